#!/usr/bin/env bash
# The entry page's scan parser (Sources/StockpileHTTP/pages/scan.js, the browser's offline copy of
# StockpileCore's ScanParser) over the same vectors the Swift runs (Tests/StockpileCoreTests/
# scan-vectors.json, ScanVectorTests.swift): prints "scan-js: ok (N vectors)", or each vector whose
# answer differs from its expectation, and exits 1. Needs node (any current LTS) on PATH.
# The rule, as in ScanVectorTests.swift: a key left out of `expect` is nil (absent from the answer),
# `fields` left out is {}, `warnings` left out is []; `expect.error` is {field, reason} of a refusal.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "scan-js: node is not on PATH"; exit 1; }

node - Sources/StockpileHTTP/pages/scan.js Tests/StockpileCoreTests/scan-vectors.json <<'EOF'
"use strict";
const fs = require("fs");
const path = require("path");
const [script, vectorsFile] = process.argv.slice(2);
const StockpileScan = require(path.resolve(script));
const { vectors } = JSON.parse(fs.readFileSync(vectorsFile, "utf8"));

const resultKeys = ["kind", "symbology", "gtin", "lot", "expiry", "production", "serial", "count", "sscc",
  "contained_gtin", "ma_device_id", "drug_code", "fields", "warnings"];
const allowed = new Set(resultKeys.concat(["error"]));
const show = (value) => value === undefined ? "nil" : JSON.stringify(value);
// Compare as the Swift test does: one line per key that differs; fields key by key; warnings in order.
function differences(got, expect) {
  const lines = [];
  for (const key of Object.keys(expect)) if (!allowed.has(key)) lines.push(`unknown key in expect: ${key}`);
  if (expect.error !== undefined || got.error !== undefined) {
    for (const key of ["field", "reason"]) {
      const a = got.error && got.error[key], e = expect.error && expect.error[key];
      if (a !== e) lines.push(`error.${key} is ${show(a)}, expected ${show(e)}`);
    }
    if (expect.error === undefined) lines.push(`refused, expected ${JSON.stringify(expect)}`);
    if (got.error === undefined) lines.push(`read as ${JSON.stringify(got)}`);
    return lines;
  }
  for (const key of Object.keys(got)) if (!resultKeys.includes(key)) lines.push(`unexpected key in the answer: ${key}`);
  for (const key of resultKeys) {
    if (key === "fields") {
      const a = got.fields || {}, e = expect.fields || {};
      for (const name of new Set(Object.keys(a).concat(Object.keys(e)))) {
        if (a[name] !== e[name]) lines.push(`fields[${name}] is ${show(a[name])}, expected ${show(e[name])}`);
      }
    } else if (key === "warnings") {
      const a = JSON.stringify(got.warnings || []), e = JSON.stringify(expect.warnings || []);
      if (a !== e) lines.push(`warnings are ${a}, expected ${e}`);
    } else if (got[key] !== expect[key]) {
      lines.push(`${key} is ${show(got[key])}, expected ${show(expect[key])}`);
    }
  }
  return lines;
}

let failures = 0;
const names = new Set();
for (const vector of vectors) {
  const name = vector.name;
  if (names.has(name)) { console.log(`scan-js: ${name}: the name is used twice`); failures++; }
  names.add(name);
  let lines;
  try {
    lines = differences(StockpileScan.parse(vector.input, vector.today), vector.expect || {});
  } catch (error) {
    lines = [`threw ${error && error.stack || error}`];
  }
  if (lines.length) {
    failures++;
    for (const line of lines) console.log(`scan-js: ${name}: ${line}`);
  }
}
if (failures) {
  console.log(`scan-js: ${failures} of ${vectors.length} vectors differ`);
  process.exit(1);
}
console.log(`scan-js: ok (${vectors.length} vectors)`);
EOF
