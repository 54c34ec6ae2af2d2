"""`i2i-fast info`: every operator is reported on every device, and a reason is said once."""

from __future__ import annotations

from i2i_fast import info, ops


def test_operator_matrix_groups_operators_with_the_same_backends():
    text = info.report()
    matrix = text.split("operator x backend", 1)[1]
    for device_block in matrix.split("\n  [")[1:]:
        lines = device_block.splitlines()[1:]
        groups = [line.strip().rstrip(":") for line in lines if line.startswith("    ")
                  and not line.startswith("      ")]
        named = [op for group in groups for op in group.split(", ")]
        assert sorted(named) == sorted(ops.OPS)  # each operator once
        backend_lines = [line for line in lines if line.startswith("      ")]
        n = len(ops.backend_names())
        assert len(backend_lines) == len(groups) * n
        blocks = [tuple(backend_lines[i:i + n]) for i in range(0, len(backend_lines), n)]
        assert len(set(blocks)) == len(blocks)  # operators with the same backends: one group
        # a backend that cannot run at all is not explained again for each operator
        for name in ops.backend_names():
            why = ops.get_backend(name).unavailable_reason()
            if why is not None:
                assert sum(why in line for line in backend_lines) == 0
                assert sum(why in line for line in text.splitlines()) == 1
