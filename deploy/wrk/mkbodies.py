#!/usr/bin/python3
"""mkbodies.py - /predict and v2 bodies from real Fashion-MNIST test images.

    mkbodies.py OUTDIR [IDX_GZ]

Writes predict_b1.json (image 0), predict_b1_int8only.json (the same with
"baseline": false), predict_b32.json (images 0..31),
v2_b1.json and labels.txt (the true classes of images 0..31). Pixels are
scaled to [0, 1] as x / 255 and written with 6 significant digits, the way a
typical client would send them."""
import gzip, json, os, struct, sys

out = sys.argv[1]
src = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
lab = src.replace("images-idx3", "labels-idx1")
with gzip.open(src, "rb") as f:
    magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
    assert magic == 2051, "not an IDX image file"
    k = rows * cols
    imgs = [f.read(k) for _ in range(32)]

def row(img):
    return "[" + ",".join("%.6g" % (p / 255.0) for p in img) + "]"

os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "predict_b1.json"), "w") as f:
    f.write('{"inputs":[' + row(imgs[0]) + "]}")
with open(os.path.join(out, "predict_b1_int8only.json"), "w") as f:
    f.write('{"baseline":false,"inputs":[' + row(imgs[0]) + "]}")
with open(os.path.join(out, "predict_b32.json"), "w") as f:
    f.write('{"inputs":[' + ",".join(row(i) for i in imgs) + "]}")
with open(os.path.join(out, "v2_b1.json"), "w") as f:
    f.write('{"id":"wrk","inputs":[{"name":"input","shape":[1,%d],"datatype":"FP32","data":%s}]}' % (k, row(imgs[0])))
if os.path.exists(lab):
    with gzip.open(lab, "rb") as f:
        f.read(8)
        with open(os.path.join(out, "labels.txt"), "w") as g:
            g.write(" ".join(str(b) for b in f.read(32)) + "\n")
