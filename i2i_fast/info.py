"""`i2i-fast info`: versions, what was built, and which backend can run which operator."""

from __future__ import annotations

import os
import platform
import sys

import torch


def _devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def report() -> str:
    """The whole report as text."""
    import i2i_fast
    from i2i_fast import extension, ops
    from i2i_fast.ops import triton_support

    lines = []
    add = lines.append
    add(f"i2i_fast {i2i_fast.__version__}")
    add(f"python {platform.python_version()} ({sys.executable})")
    add(f"torch {torch.__version__} (CUDA {torch.version.cuda}, "
        f"{torch.get_num_threads()} CPU threads)")
    add(f"platform {platform.platform()}; CPU {platform.processor() or platform.machine()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            l2 = getattr(p, "L2_cache_size", 0)
            add(f"GPU cuda:{i} {p.name}, compute capability {p.major}.{p.minor}, "
                f"{p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB"
                + (f", L2 {l2 / 2**20:.0f} MiB" if l2 else ""))
    else:
        add("GPU none (torch.cuda.is_available() is False)")

    st = extension.state()
    add("")
    add("compiled extension:")
    if st.loaded:
        how = f"built now in {st.build_seconds:.0f} s" if st.built_now else "loaded from cache"
        add(f"  loaded ({how}) {st.library_path}")
    else:
        add(f"  NOT available: {st.error}")
    add(f"  build key {st.build_key}; {len(st.sources)} sources")
    if st.loaded:
        from i2i_fast import cpu_allocator

        add(f"  CPU kernels: {torch.ops.i2i_fast.kernel_threads()} thread(s) per parallel loop "
            f"(torch.get_num_threads() = {torch.get_num_threads()})")
        add(f"  caching CPU allocator (i2i_fast.cpu_allocator): "
            f"{cpu_allocator.stats().describe()}; the training commands install it unless "
            f"{cpu_allocator.ENV}=0")
    if st.cuda_built:
        add(f"  CUDA kernels: built for architectures {st.cuda_arch_list} with nvcc "
            f"{st.cuda.nvcc_version} ({st.cuda.home})")
    else:
        add(f"  CUDA kernels: not built: {st.cuda_reason}")
    add(triton_support.state().describe())
    for env in (extension.REQUIRE_ENV, extension.BUILD_CUDA_ENV, extension.ARCH_LIST_ENV):
        add(f"  {env}={os.environ.get(env, '')!s}")
    forced = ops.forced_backend()
    add(f"backend choice: {'forced to ' + forced[0] + ' by ' + forced[1] if forced else 'automatic'}"
        f" (priority: {', '.join(ops.backend_names())})")
    for name in ops.backend_names():
        why = ops.get_backend(name).unavailable_reason()
        add(f"  {name:10s} {'available' if why is None else 'unavailable: ' + why}")

    add("")
    add("operator x backend (for a float32 input on each device, with every reason a backend "
        "refuses it; operators with the same backends are listed together):")
    for device in _devices():
        probe = torch.empty((1, 1, 1, 1), device=device)
        add(f"  [{device}]")
        groups: dict[tuple[str, ...], list[str]] = {}  # the backends' statuses -> operators
        for op in ops.OPS:
            groups.setdefault(tuple(_status(ops.get_backend(name), op, probe)
                                    for name in ops.backend_names()), []).append(op)
        for statuses, names in groups.items():
            add(f"    {', '.join(names)}:")
            for name, status in zip(ops.backend_names(), statuses):
                add(f"      {name:10s} {status}")
    return "\n".join(lines)


def _status(backend, op: str, probe: torch.Tensor) -> str:
    """Whether `backend` runs `op` on a tensor like `probe`, and every reason why not (a backend
    that cannot run at all is explained once, above the matrix)."""
    reasons = backend.reasons(op, probe)
    whole = backend.unavailable_reason()
    if whole is not None:
        others = [why for why in reasons if why != whole]
        return "unavailable (whole backend: see above)" + "".join(f"; {why}" for why in others)
    if reasons:
        return "unavailable: " + "; ".join(reasons)
    automatic = backend.automatic_reason(op, probe)
    if automatic is not None:
        return "available when forced: " + automatic
    return "available"
