#!/usr/bin/env python3
"""Embed the replay debugger's files (api/ui/*) into convstored: write a C source (ui_files.c)
that defines cs_ui_files[] and cs_ui_files_count (api/server.h), one row per file with its
name, Content-Type, bytes, gzip form and ETag, so that GET /ui/<name> (api/ui.c) is served from
the binary, with no file read at run time and nothing to install beside it.

Shaped this way because the page must work offline from a single binary: the gzip form is made
here once (mtime 0, so the output is reproducible) instead of on every request, and is left out
when it is not smaller; the ETag is a digest of the bytes, so a rebuilt page revalidates and an
unchanged one answers 304. The files are named on the command line (meson lists them, so that
editing one rebuilds), by their base name: the page is one flat folder. A file of a type not
in TYPES fails the build rather than going out as something a browser might sniff."""
import gzip
import hashlib
import os
import sys

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def c_bytes(data):
    lines = []
    for i in range(0, len(data), 20):
        lines.append("\t" + ",".join(str(b) for b in data[i:i + 20]) + ",")
    return "{\n" + "\n".join(lines) + "\n\t0}"


def main(dst, srcs):
    rows, arrays, names = [], [], set()
    for n, src in enumerate(sorted(srcs, key=os.path.basename)):
        name = os.path.basename(src)
        ext = os.path.splitext(name)[1]
        if ext not in TYPES:
            sys.exit(f"{src}: no Content-Type known for '{ext}' files (embed_ui.py TYPES)")
        if name in names:
            sys.exit(f"{src}: two files named {name}")
        names.add(name)
        with open(src, "rb") as f:
            data = f.read()
        gz = gzip.compress(data, compresslevel=9, mtime=0)
        etag = '\\"' + hashlib.sha256(data).hexdigest()[:16] + '\\"'
        arrays.append(f"static const unsigned char file{n}[] = {c_bytes(data)};")
        if len(gz) < len(data):
            arrays.append(f"static const unsigned char file{n}_gz[] = {c_bytes(gz)};")
            gz_ref, gz_len = f"file{n}_gz", len(gz)
        else:
            gz_ref, gz_len = "NULL", 0
        rows.append(f'\t{{"{name}", "{TYPES[ext]}", file{n}, {len(data)}, {gz_ref}, {gz_len}, '
                    f'"{etag}"}},')
    with open(dst, "w", encoding="utf-8") as f:
        f.write("/* Generated from api/ui/ by api/embed_ui.py: do not edit. */\n")
        f.write('#include "server.h"\n\n')
        f.write("\n\n".join(arrays) + "\n\n")
        f.write("const cs_ui_file cs_ui_files[] = {\n" + "\n".join(rows) + "\n};\n")
        f.write(f"const size_t cs_ui_files_count = {len(rows)};\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
