#!/bin/bash
nvidia-smi -L
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:$LD_LIBRARY_PATH
xz -dc .dev/llama-server-cuda-here.xz > /tmp/ls && chmod +x /tmp/ls
for MD in .dev/models896 .dev/models; do
  bash .dev/gpu-test.sh /tmp/ls gpu 99 $MD
  bash .dev/gpu-test.sh /tmp/ls cpu 0 $MD
done
nvidia-smi --query-gpu=name,memory.used --format=csv
