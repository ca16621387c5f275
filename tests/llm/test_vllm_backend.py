"""The vllm backend: an optional extra for GPU nodes; here its absence is a clear error."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from jobs.cli import app
from llm.vllm_backend import BackendUnavailable, check_vllm
from tests.jobs.test_llm_stages import write_world


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_without_the_extra_vllm_is_a_clear_error_naming_the_extra(tmp_path):
    with pytest.raises(BackendUnavailable, match=r"pip install 'zipp-pipeline\[vllm\]'"):
        check_vllm()
    write_world(tmp_path)
    result = CliRunner().invoke(
        app,
        ["run", "personas", f"lake.root={tmp_path}", "llm.backend=vllm", "llm.model=some/model"],
    )
    assert result.exit_code == 2
    assert "personas: llm.backend=vllm needs the vLLM engine" in result.output
    assert not (tmp_path / "gold/personas").exists()
