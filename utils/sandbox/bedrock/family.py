"""The base of every resource family: what each family reads from the service it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from utils.sandbox.bedrock.errors import validation
from utils.sandbox.bedrock.store import new_id

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

    def new_job(self, region: str, resource_type: str, role_arn: str) -> tuple[str, str]:
        """A new job's ID and ARN (``{resource_type}/{id}``), once its service role passes the checks
        Bedrock makes at create time (trust, with the job's ARN as ``aws:SourceArn``, and S3 access:
        :meth:`Access.refusal`); a role that fails them is a ``ValidationException``."""
        job_id = new_id()
        job_arn = self.arn(region, f"{resource_type}/{job_id}")
        refusal = self.access.refusal(role_arn, job_arn)
        if refusal:
            raise validation(refusal)
        return job_id, job_arn

    def forget_tokens_on_delete(self) -> bool:
        return self.config.idempotency_tokens == "forget_on_delete"

    def delete(self, table: Any, resource: Any) -> None:
        self.store.delete(table, resource, forget_token=self.forget_tokens_on_delete())
