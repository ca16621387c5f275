"""The `serve` config section: the persona service (`zipp serve`): where it listens, its
bearer tokens, per-token rate limits and the request size cap."""

from __future__ import annotations

from pydantic import Field

from schemas.config import Section


class ServeConfig(Section):
    host: str = Field("127.0.0.1", description="interface to listen on (loopback by default)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0: any free port)")
    tokens_file: str | None = Field(
        None, description="file of bearer token hashes, one `name:sha256hex` a line"
    )
    tokens_env: str = Field(
        "ZIPP_SERVE_TOKENS",
        description="environment variable holding plain tokens, comma-separated (hashed on load)",
    )
    rate_per_s: float = Field(5.0, gt=0, description="requests per second per token")
    burst: int = Field(20, ge=1, description="requests a token may make at once")
    max_body_kb: int = Field(256, ge=1, description="request bodies over this are refused (413)")
    image_allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts, IPs or CIDRs a client's image URL may reach despite being private "
        "(the `images` section's timeout, size and retry rules apply)",
    )
    torch_threads: int | None = Field(
        1,
        ge=1,
        description="torch intra-op threads of the service process (its forward passes are "
        "tiny: spinning OpenMP threads cost more than they give); null: torch's default",
    )
    engine_process: bool = Field(
        False,
        description="`zipp serve` runs the persona engine in a process of its own "
        "(service.engine_process): the event loop and the engine's forward passes then do "
        "not share one interpreter lock",
    )
    switch_interval_ms: float = Field(
        0.5,
        gt=0,
        description="the interpreter's thread switch interval (sys.setswitchinterval) in the "
        "service process: the event loop and the engine's thread take turns this often",
    )
    log_level: str = Field("info", description="uvicorn's log level")
