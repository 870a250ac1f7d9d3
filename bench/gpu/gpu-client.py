# Sends chat requests with N PNG images + a JSON schema to a llama-server and prints timings.
import base64, io, json, sys, time, urllib.request, random
from PIL import Image
port, n_images, calls, max_tokens = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(1)
def png(k, size=896):
    # A smooth, CT-like image (compressible, as prepared slices are), different for every call.
    im = Image.radial_gradient('L').resize((size, size)).point(lambda v: (v * 3 + k * 7) % 256)
    im = Image.merge('RGB', (im, im.rotate(k % 360), im.transpose(Image.FLIP_LEFT_RIGHT)))
    b = io.BytesIO(); im.save(b, format='PNG', compress_level=1); return base64.b64encode(b.getvalue()).decode()
schema = {"type": "object", "properties": {"findings": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {"description": {"type": "string", "maxLength": 40}, "confidence": {"type": "number"}}, "required": ["description", "confidence"]}}, "impression": {"type": "string", "maxLength": 60}}, "required": ["findings", "impression"]}
res = []
for c in range(calls):
    imgs = [png(c * 16 + i) for i in range(n_images)]
    content = [{"type": "text", "text": "Describe the images."}] + [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + i}} for i in imgs]
    body = json.dumps({"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "temperature": 0, "cache_prompt": False, "response_format": {"type": "json_schema", "json_schema": {"name": "f", "schema": schema}}}).encode()
    t0 = time.time()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
    r = json.load(urllib.request.urlopen(req, timeout=120))
    wall = (time.time() - t0) * 1000
    t = r.get("timings", {})
    txt = r["choices"][0]["message"]["content"]
    try: json.loads(txt); ok = True
    except Exception: ok = False
    res.append((wall, t))
    print(f"call {c}: wall {wall:.1f} ms, prompt_n {t.get('prompt_n')} prompt_ms {t.get('prompt_ms'):.2f}, predicted_n {t.get('predicted_n')} predicted_ms {t.get('predicted_ms'):.2f} ({t.get('predicted_per_second'):.0f} tok/s), json_ok {ok}")
walls = sorted(w for w, _ in res[1:]) or [res[0][0]]
pps = sorted(t.get('predicted_per_second', 0) for _, t in res[1:]) or [0]
pms = sorted(t.get('prompt_ms', 0) for _, t in res[1:]) or [0]
pn = res[-1][1].get('prompt_n')
print(f"SUMMARY images={n_images} calls={calls} prompt_tokens={pn} median_prompt_ms={pms[len(pms)//2]:.2f} median_wall_ms={walls[len(walls)//2]:.1f} median_gen_tok_s={pps[len(pps)//2]:.0f}")
