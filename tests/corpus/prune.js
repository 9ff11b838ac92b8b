// Drop from registry.jsonl.gz the versions no resolution over this corpus can pick: a version is
// kept when some spec for its package, written anywhere in the corpus (any version of any
// recorded package, or a project's package.json and overrides), accepts it in npm's loose mode,
// or a dist-tag names it. Every pick npm or hoard can make satisfies some such spec, so the trees
// do not change. Fields placement never reads are dropped too: `dist` keeps only the tarball URL
// (integrity is what makes the file large and does not compress; without it npm and hoard both
// compare packages by URL, the same as by name and version), and funding, license and bin go.
// Run by record.py; needs npm's semver:
//   SEMVER=<npm>/node_modules/semver node prune.js
const fs = require('fs')
const path = require('path')
const zlib = require('zlib')
const semver = require(process.env.SEMVER || 'semver')

const here = __dirname
const file = path.join(here, 'registry.jsonl.gz')
const pool = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8').split('\n').filter(Boolean)
  .map(l => JSON.parse(l))
const specs = new Map() // name -> Set of specs
const want = (name, spec) => {
  if (typeof spec !== 'string') return
  if (spec.startsWith('npm:')) {
    const rest = spec.slice(4)
    const at = rest.lastIndexOf('@')
    if (at > 0) return want(rest.slice(0, at), rest.slice(at + 1))
    return want(rest, '*')
  }
  if (!specs.has(name)) specs.set(name, new Set())
  specs.get(name).add(spec)
}
const SECTIONS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']
const fromManifest = m => {
  for (const s of SECTIONS) for (const [n, v] of Object.entries(m[s] || {})) want(n, v)
}
const fromOverrides = o => {
  for (const [k, v] of Object.entries(o || {})) {
    const at = k.lastIndexOf('@')
    const name = at > 0 ? k.slice(0, at) : k
    if (typeof v === 'string') want(name, v)
    else { if (v['.']) want(name, v['.']); fromOverrides(v) }
    if (at > 0) want(name, k.slice(at + 1))
  }
}
for (const pk of pool) for (const m of Object.values(pk.versions)) fromManifest(m)
const walk = dir => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) walk(p)
    else if (e.name === 'package.json') {
      const pj = JSON.parse(fs.readFileSync(p, 'utf8'))
      fromManifest(pj)
      fromOverrides(pj.overrides)
    }
  }
}
walk(path.join(here, 'projects'))
let before = 0, after = 0
const out = []
for (const pk of pool) {
  const s = [...(specs.get(pk.name) || [])]
  const tagged = new Set(Object.values(pk['dist-tags'] || {}))
  const ranges = s.filter(x => semver.validRange(x, true) !== null)
  const versions = {}
  for (const [v, m] of Object.entries(pk.versions)) {
    before++
    if (tagged.has(v) || ranges.some(x => semver.satisfies(v, x, true))) {
      const { funding, license, bin, ...rest } = m
      versions[v] = { ...rest, dist: { tarball: (m.dist || {}).tarball } }
      after++
    }
  }
  out.push(JSON.stringify({ 'dist-tags': pk['dist-tags'], name: pk.name, versions }))
}
fs.writeFileSync(file, zlib.gzipSync(out.join('\n') + '\n', { level: 9 }))
console.log(`pruned versions: ${before} -> ${after}`)
