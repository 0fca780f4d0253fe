"""The base of every resource family: what each family reads from the service it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from utils.sandbox.bedrock.access import Access
    from utils.sandbox.bedrock.config import Config
    from utils.sandbox.bedrock.moto_bridge import MotoBridge
    from utils.sandbox.bedrock.service import Bedrock
    from utils.sandbox.bedrock.store import Store
    from utils.sandbox.catalog import Catalog


class Family:
    """One resource family's operations; state lives in the service's shared :class:`Store`."""

    def __init__(self, service: Bedrock) -> None:
        self.service = service

    @property
    def store(self) -> Store:
        return self.service.store

    @property
    def config(self) -> Config:
        return self.service.config

    @property
    def catalog(self) -> Catalog:
        return self.service.catalog

    @property
    def moto(self) -> MotoBridge:
        return self.service.moto

    @property
    def access(self) -> Access:
        return self.service.access

    def arn(self, region: str, resource: str) -> str:
        return self.service.arn(region, resource)

    def forget_tokens_on_delete(self) -> bool:
        return self.config.idempotency_tokens == "forget_on_delete"

    def delete(self, table: Any, resource: Any) -> None:
        self.store.delete(table, resource, forget_token=self.forget_tokens_on_delete())
