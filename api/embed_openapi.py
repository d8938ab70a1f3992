#!/usr/bin/env python3
"""Convert api/openapi.yaml to compact JSON and write it as a C source (openapi.c) that
defines cs_openapi_json and cs_openapi_json_len (api/server.h), so that convstored serves
GET /v1/openapi.json without reading a file at run time. Fails on YAML that does not load or
on a document that is not OpenAPI 3.1."""
import json
import sys

import yaml


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        sys.exit(f"{src}: not an OpenAPI 3.1 document")
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()
    lines = []
    for i in range(0, len(text), 16):
        lines.append("\t" + ", ".join(str(b) for b in text[i:i + 16]) + ",")
    with open(dst, "w", encoding="utf-8") as f:
        f.write("/* Generated from api/openapi.yaml by api/embed_openapi.py: do not edit. */\n")
        f.write("#include <stddef.h>\n\n")
        f.write("extern const char cs_openapi_json[];\nextern const size_t cs_openapi_json_len;\n\n")
        f.write("const char cs_openapi_json[] = {\n" + "\n".join(lines) + "\n\t0};\n")
        f.write(f"const size_t cs_openapi_json_len = {len(text)};\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
