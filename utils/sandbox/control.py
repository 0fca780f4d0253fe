"""The sandbox's Bedrock, by its historical import path.

The emulation lives in ``utils/sandbox/bedrock/`` (one module per resource family); this
module re-exports the names other code imports from here.
"""

from __future__ import annotations

from utils.sandbox.bedrock.batch import InvocationJob
from utils.sandbox.bedrock.config import Config
from utils.sandbox.bedrock.custom_models import CustomModel
from utils.sandbox.bedrock.customization import CustomizationJob
from utils.sandbox.bedrock.deployments import Deployment
from utils.sandbox.bedrock.errors import ERROR_STATUS, ApiError, S3WriteError, not_found, validation
from utils.sandbox.bedrock.moto_bridge import MotoBridge
from utils.sandbox.bedrock.provisioned import ProvisionedThroughput
from utils.sandbox.bedrock.runtime import InvokeResult, Target
from utils.sandbox.bedrock.service import Bedrock
from utils.sandbox.bedrock.store import iso, new_id, paginate

__all__ = [
    "ERROR_STATUS", "ApiError", "Bedrock", "Config", "CustomModel", "CustomizationJob", "Deployment",
    "InvocationJob", "InvokeResult", "MotoBridge", "ProvisionedThroughput", "S3WriteError", "Target",
    "iso", "new_id", "not_found", "paginate", "validation",
]
