#!/usr/bin/env bash
# The CPU instruction sets llama.cpp (crate llama-cpp-sys-2, the llm plugin's engine) is
# built for: those of this machine. llama-cpp-sys-2 builds ggml with GGML_NATIVE=OFF and,
# unless told, only up to AVX2; it passes every GGML_* variable to CMake, so this prints
# GGML_<SET>=ON for each set /proc/cpuinfo lists (AVX-512, VNNI, BF16), OFF for the
# others. llama.cpp's own llama-server wheel picks such code at run time, and was twice as
# fast as the AVX2 build on a CPU with AVX-512 and AMX (tests/benches/llm.rs).
# The build then runs only on a CPU with the same sets, as a GGML_NATIVE build would; cargo
# rebuilds llama.cpp when the printed set changes (a cache moved to another machine);
# scripts/setup.sh also cleans a build made before these variables were set.
# Use: eval "$(bash scripts/ggml-cpu.sh)" before cargo builds the llm plugin.
set -euo pipefail

flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }

[ "$(uname -m)" = x86_64 ] || exit 0
# Every variable is printed, ON or OFF: cargo reruns llama-cpp-sys-2's build script when one
# it saw changes, so a machine with other sets gets its own build.
say() { if has "${@:2}"; then echo "export $1=ON"; else echo "export $1=OFF"; fi; }
# ggml's GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
avx512="avx512f avx512cd avx512vl avx512dq avx512bw"
say GGML_AVX512 $avx512
say GGML_AVX512_VBMI $avx512 avx512vbmi
say GGML_AVX512_VNNI $avx512 avx512_vnni
say GGML_AVX512_BF16 $avx512 avx512_bf16
# AMX stays off: this static ggml build stops with SIGILL at its first tileloadd here (the
# kernel grants the tile permission; llama-server's AMX build runs on the same machine).
echo "export GGML_AMX_TILE=OFF GGML_AMX_INT8=OFF GGML_AMX_BF16=OFF"
say GGML_AVX_VNNI avx_vnni
