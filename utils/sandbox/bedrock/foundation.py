"""Foundation models and system-defined inference profiles, read from ``catalog.py``."""

from __future__ import annotations

import time
from typing import Any

from utils.sandbox.bedrock.errors import not_found, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import listing
from utils.sandbox.catalog import INVALID_MODEL_IDENTIFIER, FoundationModel


class FoundationModels(Family):
    def list_foundation_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        out = []
        for model in self.catalog.models(region):
            if p.get("byProvider") and p["byProvider"].lower() != model.provider.lower():
                continue
            if p.get("byCustomizationType") and p["byCustomizationType"] not in model.customizations:
                continue
            if p.get("byInferenceType") and p["byInferenceType"] not in model.inference_types:
                continue
            if p.get("byOutputModality") and p["byOutputModality"] not in model.output_modalities:
                continue
            out.append(self.catalog.summary(model, region))
        return {"modelSummaries": out}

    def _foundation_model(self, region: str, identifier: str) -> FoundationModel:
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        return model

    def get_foundation_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        model = self._foundation_model(region, p["modelIdentifier"])
        return {"modelDetails": self.catalog.summary(model, region)}

    def get_foundation_model_availability(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        model = self._foundation_model(region, p["modelId"])
        with self.store.lock:  # a fresh account's subscriptions (account_access.AccountAccess)
            return self.service.account_access.availability(model.model_id, time.time())

    def list_inference_profiles(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        items = [] if p.get("typeEquals") == "APPLICATION" else self.catalog.profiles(region)
        account = self.moto.account
        return listing("inferenceProfileSummaries", items, p,
                       lambda x: self.catalog.profile_summary(x, region, account), sort_by=None)

    def get_inference_profile(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        profile = self.catalog.profile(region, p["inferenceProfileIdentifier"])
        if profile is None:
            raise not_found(f"Inference profile {p['inferenceProfileIdentifier']} not found.")
        return self.catalog.profile_summary(profile, region, self.moto.account)
