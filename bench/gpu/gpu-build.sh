#!/bin/bash
# Builds the CUDA llama-server from the carried llama.cpp source with the project's flags.
set -e
H=$(find / -xdev -name cublas_v2.h 2>/dev/null | head -1)
EXTRA=""
case "$H" in
  /usr/local/cuda*) ;;
  "") echo "no cublas_v2.h found" ;;
  *) INC=$(dirname $H); LIB=$(dirname $INC)/lib; ls $LIB
     EXTRA="-DCUDA_cublas_LIBRARY=$(ls $LIB/libcublas.so* | head -1) -DCUDA_cublasLt_LIBRARY=$(ls $LIB/libcublasLt.so* | head -1) -DCMAKE_CUDA_FLAGS=-I$INC -DCMAKE_CXX_FLAGS=-I$INC" ;;
esac
echo "cublas header: $H  extra: $EXTRA"
mkdir -p /tmp/ll/src && tar -xJf .dev/llama-src.tar.xz -C /tmp/ll/src
T0=$(date +%s)
cmake -S /tmp/ll/src -B /tmp/ll/build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 $EXTRA > /tmp/ll/configure.log 2>&1 || { tail -40 /tmp/ll/configure.log; exit 1; }
T1=$(date +%s); echo "configured in $((T1-T0)) s"
cmake --build /tmp/ll/build --config Release --target llama-server -j 16 > /tmp/ll/build.log 2>&1 || { grep -m5 -B2 -A10 "error" /tmp/ll/build.log; exit 1; }
T2=$(date +%s); echo "compiled+linked in $((T2-T1)) s (total $((T2-T0)) s)"
ls -la /tmp/ll/build/bin/llama-server
