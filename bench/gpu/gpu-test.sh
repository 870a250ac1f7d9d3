#!/bin/bash
# usage: gpu-test.sh <llama-server> <label> <ngl>
BIN=$1; LABEL=$2; NGL=${3:-99}; MD=${4:-.dev/models}
LOG=$OUT/server-$LABEL-ngl$NGL-$(basename $MD).log
$BIN -m $MD/tiny-gemma3.gguf --mmproj $MD/tiny-gemma3-mmproj.gguf -ngl $NGL $( [ "$NGL" = 0 ] && echo --no-mmproj-offload ) --host 127.0.0.1 --port 8090 --api-key k -c 8192 -np 1 > $LOG 2>&1 &
PID=$!
for i in $(seq 1 60); do curl -sf -H 'Authorization: Bearer k' http://127.0.0.1:8090/health >/dev/null && break; sleep 0.5; done
curl -s http://127.0.0.1:8090/health; echo
echo "== $LABEL ngl=$NGL"
python3 .dev/gpu-client.py 8090 0 21 64 | tail -3
python3 .dev/gpu-client.py 8090 2 21 64 | tail -3
python3 .dev/gpu-client.py 8090 8 11 64 | tail -2
kill $PID; wait $PID 2>/dev/null
grep -iE "ggml_cuda_init|Device 0|offloaded|CUDA0 model buffer|using device|clip_ctx|CLIP using" $LOG | head -12
grep -oE "image slice encoded in [0-9]+ ms" $LOG | awk '{print $5}' | sort -n | awk '{a[NR]=$1} END {if (NR) print "image encode ms: n=" NR " min=" a[1] " median=" a[int((NR+1)/2)] " max=" a[NR]}'
grep -oE "image decoded \(batch [0-9]+/[0-9]+\) in [0-9]+ ms" $LOG | awk '{print $NF-0, $0}' | sort -n | head -0
grep -oE "decoded \(batch [0-9]+/[0-9]+\) in [0-9]+ ms" $LOG | grep -oE "[0-9]+ ms" | sort -n | awk '{a[NR]=$1} END {if (NR) print "image batch decode ms: n=" NR " median=" a[int((NR+1)/2)]}'
