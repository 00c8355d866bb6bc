"""Register-tile sizes of the CPU GEMM/convolution micro-kernels (no TVM import: the layout
pass picks weight panel widths with the same rules the schedules use).

A micro-kernel keeps an ``mr x nv`` grid of accumulator vectors in registers; each
reduction step loads ``nv`` weight vectors, broadcasts ``mr`` input scalars and does
``mr * nv`` vector FMAs. It needs ``mr * nv + nv + 1`` vector registers (32 on AVX-512
and NEON, 16 on AVX2). Measured on AVX-512 (one core, 128x768 @ 768x768, 1 thread):
8x3 vectors ran at ~190 GFLOP/s, the machine's single-core sgemm peak, while 8x4
(32 accumulators: spills) ran at ~115 and 4x4 (16) at ~175.
"""
from __future__ import annotations

# accumulators that fill the register file without spilling (24 of 32 vector registers)
TARGET_ACCUMULATORS = 24
# How a tile's rate falls with fewer accumulators: (share of TARGET_ACCUMULATORS) ** exponent.
# AVX-512: 4x4 (16 of 24) ran at 175/190 = 0.92 of 8x3's rate above, and (16/24) ** 0.2 = 0.92
# (the linear share, 0.67, made the seed MLP's fc1, 64x784 @ 784x128, take 8x3 tiles that pad
# 128 columns to 144: 137 us on one core; unpadded 16x1, 8x2 and 4x4 tiles all ran 119-122 us).
# Other vector widths are unmeasured: the linear share.
ACCUMULATOR_EXPONENT = {512: 0.2}


def vector_registers(vector_bits: int) -> int:
    return 16 if vector_bits == 256 else 32  # AVX2: ymm0-15; AVX-512 zmm0-31; NEON v0-31


def max_rows(nv: int, vector_bits: int) -> int:
    """Most accumulator rows a tile `nv` vectors wide can have without spilling."""
    regs = vector_registers(vector_bits)
    budget = min(TARGET_ACCUMULATORS * regs // 32 + (nv == 2) * 4, regs - nv - 1)
    return max(budget // nv, 1)


def pick_rows(m: int, nv: int, vector_bits: int) -> int:
    """Rows of the register tile for m output rows: the tallest that divides m (no tail
    iterations) unless that is less than half the register budget, then the budget
    itself (the last tile is partial)."""
    top = max_rows(nv, vector_bits)
    if m <= top:
        return m
    for mr in range(top, 0, -1):
        if m % mr == 0 and 2 * mr >= top:
            return mr
    return top


def tile_efficiency(m: int, n: int, mr: int, nv: int, lanes: int, vector_bits: int) -> float:
    """Rough fraction of FMA peak an (mr x nv) tile reaches on an m x n output: register-tile
    use times the share of computed rows/columns that are real (not padding or tails)."""
    full = TARGET_ACCUMULATORS * vector_registers(vector_bits) / 32
    use = (min(mr * nv, full) / full) ** ACCUMULATOR_EXPONENT.get(vector_bits, 1.0)
    rows_done = -(-m // mr) * mr
    cols_done = -(-n // (nv * lanes)) * nv * lanes
    return use * (m / rows_done) * (n / cols_done)


def pick_panel(m: int, n: int, lanes: int, vector_bits: int) -> int:
    """Panel width (a multiple of the vector lanes) to pack an n-column weight into, for an
    m-row GEMM: the tile shape with the best `tile_efficiency` (ties: the narrower panel,
    less padding)."""
    best = None
    for nv in (1, 2, 3, 4):
        mr = pick_rows(m, nv, vector_bits)
        score = tile_efficiency(m, n, mr, nv, lanes, vector_bits)
        if best is None or score > best[0] + 1e-9:
            best = (score, nv)
    return best[1] * lanes


def column_vectors(n: int, lanes: int) -> tuple[int, int]:
    """(vector lanes, vectors per tile row) for n output columns read from an unpacked operand
    (a matmul's right operand, a 1x1 conv's pixels): the widest lanes that divide n, then 3, 4
    or 2 such vectors when they divide too. Lanes 1: no vector width divides n."""
    if n <= lanes:
        return n, 1  # e.g. N=10 classes: one short vector per row
    vl = next((v for v in lane_candidates(lanes) if n % v == 0), 1)
    nv = next((k for k in (3, 4, 2) if (n // vl) % k == 0), 1)
    return vl, nv


def lane_candidates(lanes: int) -> list[int]:
    """Vector widths to try, widest first: lanes, lanes/2, ... 2."""
    out = []
    while lanes >= 2:
        out.append(lanes)
        lanes //= 2
    return out


def conv_gemm_panel(out_pixels: int, lanes: int, vector_bits: int) -> int:
    """Output channels per weight panel of a 1x1 conv computed as a GEMM (rows: channels,
    columns: pixels): the register tile's row count, so each tile reads one panel."""
    _, nv = column_vectors(out_pixels, lanes)
    return max_rows(nv, vector_bits)


# convolution tiles (graphc.codegen.schedule.cpu_conv has the measurements behind them)
CONV_TILE_COLUMNS = 8
CONV_PANEL_VECTORS = 2


def conv_panel(out_channels: int, lanes: int) -> int:
    """Output channels per packed conv weight panel: two vectors (one when there are fewer channels)."""
    return lanes * max(1, min(CONV_PANEL_VECTORS, -(-out_channels // lanes)))


def conv_columns(ow: int, nv: int, vector_bits: int) -> int:
    """Output columns per conv register tile: up to CONV_TILE_COLUMNS (within the register
    budget), preferring a divisor of the row (ResNet's 56/28/14/7 rows: 8, 7, 7, 7);
    otherwise the last tile of a row is partial."""
    top = min(CONV_TILE_COLUMNS, max_rows(nv, vector_bits))
    if ow <= top:
        return ow
    for mr in range(top, (top + 1) // 2 - 1, -1):
        if ow % mr == 0:
            return mr
    return top


def tile_row_candidates(m: int, nv: int, vector_bits: int) -> list[int]:
    """Register-tile heights (GEMM rows, conv columns) a tuner may try for m rows of `nv`
    vectors: every height from half the register budget up to the budget (shorter tiles
    reload the weight vectors too often), or from m/2 to m when m fits in one tile."""
    top = min(max_rows(nv, vector_bits), m)
    return list(range(max(1, (top + 1) // 2), top + 1))
