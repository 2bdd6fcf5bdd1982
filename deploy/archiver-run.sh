#!/usr/bin/env bash
# archiver-run.sh: pull the feed-dump mirrors (git, fast-forward only), then run one archiver crawl on them.
#
# Usage: archiver-run.sh MIRROR... [-- SCRAPY_ARGS...]
#   MIRROR       a git clone of a dumps repository (e.g. NodeBE4/news-beyond-wall), pulled before the crawl
#   SCRAPY_ARGS  passed on to `scrapy crawl feeddump`, e.g. -s ARCHIVER_RECHECK_BUDGET=5000
#
# Environment (all optional):
#   ARCHIVER_PROJECT  folder with scrapy.cfg (default: the folder above this script)
#   ARCHIVER_OUTPUT   output folder: warc/, items/, reports/, state (default: $ARCHIVER_PROJECT/output)
#   ARCHIVER_DUMPS    folder inside every mirror that holds the DW dumps (default: articles/德国之声)
#   ARCHIVER_SCRAPY   the scrapy command (default: scrapy; cron needs a full path such as .venv/bin/scrapy)
#
# Exit status: 0 when the crawl ran; git's status when a pull failed (then nothing is crawled); 75 when
# another archiver-run.sh holds a mirror; 2 on usage errors; otherwise the crawl's own status (1 when
# another run holds the output folder). The crawl replaces this shell, so SIGTERM reaches scrapy directly.
set -euo pipefail

here=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
project=${ARCHIVER_PROJECT:-$(dirname -- "$here")}
output=${ARCHIVER_OUTPUT:-$project/output}
dumps_dir=${ARCHIVER_DUMPS:-articles/德国之声}
scrapy=${ARCHIVER_SCRAPY:-scrapy}
[[ $output == /* ]] || output=$PWD/$output

log() { printf '%s archiver-run: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

mirrors=()
while (($#)); do
    case $1 in
        --) shift; break ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) log "unknown option $1 (scrapy options go after --)"; exit 2 ;;
    esac
    mirror=$(CDPATH='' cd -- "$1" 2>/dev/null && pwd) || { log "no such mirror folder: $1"; exit 2; }
    [[ $mirror != *,* ]] || { log "a mirror path must not contain a comma: $mirror"; exit 2; }
    mirrors+=("$mirror")
    shift
done
((${#mirrors[@]})) || { log "usage: archiver-run.sh MIRROR... [-- SCRAPY_ARGS...]"; exit 2; }

dumps=""
for mirror in "${mirrors[@]}"; do
    # One archiver-run.sh per mirror at a time: a pull must not rewrite dumps that another crawl is reading.
    # The lock is held (inherited) until the crawl ends. Two crawls on one output folder are refused by the
    # crawl itself (the state's run lock), whatever started them.
    gitdir=$(git -C "$mirror" rev-parse --absolute-git-dir 2>/dev/null) || { log "not a git clone: $mirror"; exit 2; }
    lock=$gitdir/archiver-run.lock
    exec {fd}>>"$lock"
    flock -n "$fd" || { log "another archiver-run.sh is using $mirror (lock $lock); not starting"; exit 75; }

    log "pulling $mirror"
    status=0
    git -C "$mirror" pull --ff-only --quiet || status=$?
    if ((status)); then
        log "git pull --ff-only failed in $mirror (status $status); no crawl this time"
        exit "$status"
    fi
    [[ -d $mirror/$dumps_dir ]] || { log "no folder $dumps_dir in $mirror (set ARCHIVER_DUMPS)"; exit 2; }
    log "$mirror is at $(git -C "$mirror" rev-parse --short HEAD)"
    dumps=${dumps:+$dumps,}$mirror/$dumps_dir
done

cd "$project"
log "crawling $dumps into $output"
exec "$scrapy" crawl feeddump -a "dumps=$dumps" -s "ARCHIVER_OUTPUT_DIR=$output" "$@"
