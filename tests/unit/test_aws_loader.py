"""utils.aws shares one botocore data loader per data path, as botocore's own ``create_loader`` resolves it."""

from __future__ import annotations

from utils import aws


def test_sessions_share_a_loader_whose_search_path_boto3_extends_once(monkeypatch):
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    loaders = {id(aws.session("us-east-1")._loader) for _ in range(20)}
    assert len(loaders) == 1
    (loader,) = [aws.session("us-east-1")._loader]
    assert len(loader.search_paths) == len(set(loader.search_paths))


def test_the_profiles_data_path_is_honoured_on_aws(monkeypatch, tmp_path):
    config = tmp_path / "config"
    config.write_text(f"[default]\ndata_path = {tmp_path / 'models'}\n")
    monkeypatch.setenv("WORKSHOP_BACKEND", "aws")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    assert str(tmp_path / "models") in aws.session("us-east-1")._loader.search_paths
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "env"))
    assert str(tmp_path / "env") in aws.session("us-east-1")._loader.search_paths
