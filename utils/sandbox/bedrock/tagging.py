"""Tagging of every taggable resource (customization jobs, custom models, PTs, deployments,
batch jobs). Tags live in the store by ARN; creates add ``tags``/``jobTags`` there too."""

from __future__ import annotations

from typing import Any

from utils.sandbox.bedrock.errors import ApiError, not_found
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import tag_dict

MAX_TAGS = 200


class Tagging(Family):
    def _taggable(self, region: str, arn: str) -> None:
        arn_region = arn.split(":")[3] if arn.count(":") >= 5 else ""
        if not self.store.knows(arn) or arn_region != region:  # regional: another region's ARN is unknown
            raise not_found(f"Could not find a resource with ARN {arn}.")

    def tag_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            arn = p["resourceARN"]
            self._taggable(region, arn)
            merged = {**self.store.tags.get(arn, {}), **tag_dict(p["tags"])}
            if len(merged) > MAX_TAGS:
                raise ApiError("TooManyTagsException", f"A resource can have at most {MAX_TAGS} tags.", resourceName=arn)
            self.store.tags[arn] = merged
            return {}

    def untag_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            self._taggable(region, p["resourceARN"])
            current = self.store.tags.get(p["resourceARN"], {})
            for key in p["tagKeys"]:
                current.pop(key, None)
            return {}

    def list_tags_for_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            self._taggable(region, p["resourceARN"])
            return {"tags": [{"key": k, "value": v} for k, v in self.store.tags.get(p["resourceARN"], {}).items()]}
