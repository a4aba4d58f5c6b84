"""Generation through a vLLM-style server and LoRA sync after an update, against our own server.

`agentgym serve model` (a subprocess serving the embedded model) implements the endpoints vLLM
offers: `/v1/completions` with token-id prompts and `return_tokens_as_token_ids`, and the dynamic
LoRA endpoints. `VLLMServerModel` must be token-exact through it (ids, text and logprobs against a
local forward pass; multi-turn prompts extend the previous prompt plus the sampled ids), the
`vllm_lora` sync must make the server sample from exactly the adapter trained locally, and bad
inputs must be clear errors, never hangs.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentgym.models import SamplingParams, embedded, load_model
from agentgym.models.openai_compat import ModelServerError
from agentgym.models.transformers_model import ChatPrompts, TransformersChatModel
from agentgym.models.vllm_server import VLLMServerModel
from agentgym.train.sync import LoraSync, make_sync

ASK = [{"role": "user", "content": "Name a colour."}]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "serve", "model", "--port", str(port), "--name", "smol"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read().decode()
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def local():
    return load_model("embedded")


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests through and keeps the body of every completions request."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions"):
            self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)


def forward_logprobs(module, prompt: list[int], sampled: list[int]) -> list[float]:
    """Log-probability of each sampled id under one plain forward pass (temperature 1)."""
    with torch.no_grad():
        logits = module(torch.tensor([prompt + sampled])).logits[0].float()
    lp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return lp.gather(-1, torch.tensor(sampled)[:, None])[:, 0].tolist()


def close(a: list[float], b: list[float], tol: float = 2e-3) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) < tol


@pytest.mark.slow
async def test_generation_is_token_exact_through_the_server(server, local):
    rec = Recorder()
    m = VLLMServerModel(
        server, ChatPrompts.from_pretrained(embedded.prepare(log=lambda *_: None)), transport=rec
    )
    a = await m.generate(ASK, None, SamplingParams(temperature=1.0, max_new_tokens=16, seed=3))
    first = rec.bodies[-1]
    assert first["prompt"] == local.sequence(ASK, None, add_generation_prompt=True).ids
    assert first["model"] == "smol" and first["return_tokens_as_token_ids"] is True
    assert a.token_ids and len(a.logprobs) == len(a.token_ids)
    stopped = a.token_ids[-1] in local.eos_ids
    assert local.decode(a.token_ids[:-1] if stopped else a.token_ids) == a.text
    assert a.finish_reason == ("stop" if stopped else "length")
    assert close(a.logprobs, forward_logprobs(local.model, first["prompt"], a.token_ids))

    convo = [
        *ASK,
        {"role": "assistant", "content": a.text, "token_ids": a.token_ids, "logprobs": a.logprobs},
        {"role": "user", "content": "And another one?"},
    ]
    b = await m.generate(convo, None, SamplingParams(temperature=1.0, max_new_tokens=6, seed=4))
    second = rec.bodies[-1]["prompt"]
    assert second[: len(first["prompt"]) + len(a.token_ids)] == first["prompt"] + a.token_ids
    assert second == local.sequence(convo, None, add_generation_prompt=True).ids
    assert close(b.logprobs, forward_logprobs(local.model, second, b.token_ids))
    await m.aclose()


@pytest.mark.slow
async def test_spec_names_server_and_tokenizer(server, local):
    m = load_model(f"vllm-server:{server}#embedded")
    assert isinstance(m, VLLMServerModel) and m.prompts.chat_template == local.chat_template
    out = await m.generate(ASK, None, SamplingParams(temperature=0.0, max_new_tokens=2))
    assert m.model == "smol" and out.model == "smol"  # the base model, read from GET /v1/models
    assert len(out.token_ids) == len(out.logprobs) == 2


def _randomise_lora(module, seed: int) -> None:
    """Seeded A and non-zero B matrices (a fresh LoRA is the identity): an adapter that changes the
    outputs whatever the global RNG did before."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in module.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * (0.05 if "lora_A" in n else 0.1))


@pytest.mark.slow
def test_vllm_lora_sync_serves_the_trained_adapter(server, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load_model("embedded")
    peft = get_peft_model(
        base.model,
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    policy = TransformersChatModel(peft, base.tokenizer, name="local-lora")
    gen = VLLMServerModel(server, policy)
    before = asyncio.run(gen.generate(ASK, None, GREEDY))

    sync = make_sync("vllm_lora", out=tmp_path, generator=gen)
    _randomise_lora(peft, 1)
    sync(peft, 1)
    assert gen.adapter == "policy-v1" and (tmp_path / "adapters" / "v1" / "adapter_config.json").exists()
    served = asyncio.run(gen.generate(ASK, None, GREEDY))
    mine = asyncio.run(policy.generate(ASK, None, GREEDY))
    assert served.token_ids == mine.token_ids and close(served.logprobs, mine.logprobs)
    assert served.token_ids != before.token_ids  # the adapter is really applied
    gen.adapter = None  # the base weights are still served beside the adapter
    assert asyncio.run(gen.generate(ASK, None, GREEDY)).token_ids == before.token_ids

    for version in (2, 3):
        _randomise_lora(peft, version)
        sync(peft, version)
    listed = httpx.get(f"{server}/models").json()["data"]
    assert [(d["id"], d["parent"]) for d in listed] == [("smol", None), ("policy-v3", "smol")]
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["v2", "v3"]
    served = asyncio.run(gen.generate(ASK, None, GREEDY))
    mine = asyncio.run(policy.generate(ASK, None, GREEDY))
    assert served.token_ids == mine.token_ids and close(served.logprobs, mine.logprobs)

    asyncio.run(gen.unload_lora("policy-v3"))
    assert gen.adapter is None
    assert asyncio.run(gen.generate(ASK, None, GREEDY)).token_ids == before.token_ids


@pytest.mark.slow
async def test_bad_adapters_are_clear_errors(server, local):
    m = VLLMServerModel(server, local, model="smol", max_retries=0)
    m.adapter = "policy-v99"
    with pytest.raises(ModelServerError) as e:
        await m.generate(ASK, None, GREEDY)
    assert e.value.kind == "not_found" and "policy-v99" in e.value.message
    with pytest.raises(ModelServerError) as e:
        await m.unload_lora("policy-v99")
    assert e.value.kind == "not_found" and "cannot be found" in e.value.message
    with pytest.raises(ModelServerError) as e:
        await m.load_lora("broken", "/nonexistent/adapter")
    assert e.value.kind == "bad_request" and "Loading lora broken failed" in e.value.message


async def test_server_down_or_silent_is_a_clear_error_not_a_hang():
    prompts = ChatPrompts.from_pretrained(embedded.prepare(log=lambda *_: None))
    down = VLLMServerModel(f"http://127.0.0.1:{_free_port()}/v1", prompts, model="m")
    t0 = time.perf_counter()
    with pytest.raises(ModelServerError) as e:
        await down.generate(ASK)
    assert e.value.kind == "connect" and time.perf_counter() - t0 < 5
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        mute = VLLMServerModel(
            f"http://127.0.0.1:{port}/v1", prompts, model="m", timeout_s=0.5, max_retries=0
        )
        t0 = time.perf_counter()
        with pytest.raises(ModelServerError) as e:
            await mute.generate(ASK)
        assert e.value.kind == "timeout" and time.perf_counter() - t0 < 5


async def test_answers_without_token_ids_are_refused():
    """A server that ignores return_tokens_as_token_ids gives text tokens: refused, never re-tokenised."""

    async def completions(request):
        lp = {"tokens": ["Hi"], "token_logprobs": [-0.1], "top_logprobs": None, "text_offset": [0]}
        return JSONResponse(
            {"choices": [{"index": 0, "text": "Hi", "logprobs": lp, "finish_reason": "length"}]}
        )

    app = Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])
    prompts = ChatPrompts.from_pretrained(embedded.prepare(log=lambda *_: None))
    m = VLLMServerModel("http://mock/v1", prompts, model="m", transport=httpx.ASGITransport(app=app))
    with pytest.raises(ModelServerError) as e:
        await m.generate(ASK)
    assert e.value.kind == "protocol" and "return_tokens_as_token_ids" in e.value.message


def test_sync_registry_refuses_what_it_cannot_sync(tmp_path):
    with pytest.raises(ValueError, match="unknown weight sync"):
        make_sync("nccl", out=tmp_path, generator=None)
    make_sync("none", out=tmp_path, generator=None)(torch.nn.Linear(2, 2), 1)  # nothing to move
    with pytest.raises(TypeError, match="VLLMServerModel"):
        make_sync("vllm_lora", out=tmp_path, generator=object())
    prompts = ChatPrompts.from_pretrained(embedded.prepare(log=lambda *_: None))
    sync = make_sync("vllm_lora", out=tmp_path, generator=VLLMServerModel("http://x/v1", prompts, model="m"))
    assert isinstance(sync, LoraSync)
    with pytest.raises(TypeError, match="peft LoRA module"):
        sync(torch.nn.Linear(2, 2), 1)


class _Echo:
    """A plumbing stand-in for a served model: it 'samples' the prompt's last two ids, then the end token."""

    name, tool_format, eos_ids = "echo", "hermes", frozenset({2})

    def __init__(self) -> None:
        self.adapters: dict[str, str] = {}
        self.tokenizer = type("Tok", (), {"__len__": lambda self: 100})()

    def decode(self, ids):
        return "".join(f"<{i}>" for i in ids)

    async def generate_ids(self, ids, sampling, adapter=None):
        from agentgym.models.base import Completion

        out = [*ids[-2:], 2]
        return Completion(
            text=self.decode(out[:-1]),
            token_ids=out,
            logprobs=[-0.5] * 3,
            prompt_tokens=len(ids),
            model=adapter or "echo",
        )


async def test_served_completions_answer_like_vllm_and_refuse_what_they_cannot_do():
    from agentgym.models.serve import app

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app(_Echo())), base_url="http://t/v1"
    ) as c:
        r = await c.post(
            "/completions",
            json={"model": "echo", "prompt": [5, 6, 7], "logprobs": 1, "return_tokens_as_token_ids": True},
        )
        choice = r.json()["choices"][0]
        assert r.status_code == 200 and choice["text"] == "<6><7>" and choice["finish_reason"] == "stop"
        assert choice["logprobs"]["tokens"] == ["token_id:6", "token_id:7", "token_id:2"]
        assert choice["logprobs"]["token_logprobs"] == [-0.5] * 3 and r.json()["usage"]["prompt_tokens"] == 3
        plain = await c.post("/completions", json={"prompt": [[5, 6]], "logprobs": 0})
        assert plain.json()["choices"][0]["logprobs"]["tokens"] == ["<5>", "<6>", "<2>"]
        for bad, says in (
            ({"prompt": []}, "prompt must be"),
            ({"prompt": [[1], [2]]}, "prompt must be"),
            ({"prompt": [1, 500]}, "out of vocabulary"),
            ({"prompt": [1], "n": 2}, "n must be 1"),
            ({"prompt": [1], "logprobs": 5}, "logprobs must be 0 or 1"),
            ({"prompt": [1], "stop": ["\n"]}, "stop strings"),
            ({"prompt": [1], "stop_token_ids": [9]}, "stop_token_ids"),
            ({"prompt": [1], "max_tokens": 0}, "bad sampling"),
        ):
            r = await c.post("/completions", json=bad)
            assert r.status_code == 400 and says in r.json()["error"]["message"], (bad, r.text)
        r = await c.post("/completions", json={"model": "policy-v1", "prompt": [1]})
        assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"
        r = await c.post("/load_lora_adapter", json={"lora_name": "a"})
        assert r.status_code == 400 and "must be provided" in r.json()["error"]["message"]
        r = await c.post("/load_lora_adapter", json={"lora_name": "a", "lora_path": "/x"})
        assert r.status_code == 400 and "cannot load LoRA adapters" in r.json()["error"]["message"]
        r = await c.post("/unload_lora_adapter", json={})
        assert r.status_code == 400
        r = await c.post("/completions", content=b"{not json")
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]


@pytest.mark.slow
def test_grpo_trainer_samples_from_the_server_and_syncs_each_update(server, tmp_path):
    """GRPOTrainer end to end with `generator: vllm_server`: rollouts come from the server, each
    update's adapter is loaded into it, and the training sequences are the server's sampled ids."""
    from agentgym.train.grpo import GRPOConfig, GRPOTrainer

    cfg = GRPOConfig(
        out=str(tmp_path / "run"),
        suite="compact",
        split=None,
        task_ids=["weather-paris"],
        steps=2,
        tasks_per_step=1,
        group_size=2,
        max_new_tokens=12,
        max_turns=1,
        lr=1e-3,
        lora={"r": 4, "alpha": 8},
        filter_zero_advantage=False,
        generator="vllm_server",
        server_url=server,
        sync="vllm_lora",
        monitors=False,
        save_every=100,
    )
    trainer = GRPOTrainer(cfg)
    assert isinstance(trainer.generator, VLLMServerModel) and trainer.generator.adapter is None
    history = trainer.train()
    assert [m["step"] for m in history] == [0.0, 1.0]
    assert all(m["exact_sequences"] == m["sequences"] > 0 for m in history)
    assert trainer.generator.adapter == "policy-v2"
    listed = [d["id"] for d in httpx.get(f"{server}/models").json()["data"]]
    assert "policy-v2" in listed and "policy-v1" not in listed
    assert sorted(p.name for p in (tmp_path / "run" / "adapters").iterdir()) == ["v1", "v2"]
    names = {tr.policy for g in trainer.last_groups for tr in g}
    assert names == {"policy@1"}  # the second step's episodes were played after the first sync


def test_server_generator_config_errors():
    from pydantic import ValidationError

    from agentgym.train.grpo import GRPOConfig

    with pytest.raises(ValidationError, match="needs server_url"):
        GRPOConfig(generator="vllm_server")
    with pytest.raises(ValidationError, match="needs lora"):
        GRPOConfig(generator="vllm_server", server_url="http://x/v1", sync="vllm_lora")
    with pytest.raises(ValidationError, match="other than 'local'"):
        GRPOConfig(sync="vllm_lora", lora={})
    with pytest.raises(ValidationError, match="synchronous loop"):
        GRPOConfig(generator="vllm_server", server_url="http://x/v1", async_staleness=1)
