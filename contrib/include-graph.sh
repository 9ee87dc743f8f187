#!/usr/bin/env bash
# Prints the include graph of src/ between layers (util, core, net, store,
# main: src/*.c and src/*.h) and fails when an include breaks the one
# direction util <- core <- {net, store} <- main: net and store never
# include each other, core includes neither, util only itself, and core and
# util use no libwebsockets, libpq or jansson.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

layer() {
	case $1 in
	src/util/* | src/log.[ch]) echo util ;;
	src/core/*) echo core ;;
	src/net/*) echo net ;;
	src/store/*) echo store ;;
	*) echo main ;;
	esac
}

# allowed FROM TO: whether layer FROM may include layer TO.
allowed() {
	[[ $1 == "$2" ]] && return 0
	case $1:$2 in
	core:util | net:util | net:core | store:util | store:core) return 0 ;;
	main:*) return 0 ;;
	esac
	return 1
}

declare -A edges=()
bad=0
while IFS= read -r f; do
	from=$(layer "$f")
	while IFS= read -r inc; do
		case $inc in
		'<libwebsockets.h>' | '<libpq-fe.h>' | '<jansson.h>')
			if [[ $from == core || $from == util ]]; then
				echo "include-graph: $f uses $inc ($from must not)" >&2
				bad=1
			fi
			continue
			;;
		'<'*) continue ;;	# other system headers
		esac
		inc=${inc#\"}
		inc=${inc%\"}
		to=$(layer "src/$inc")
		edges["$from -> $to"]=$((${edges["$from -> $to"]:-0} + 1))
		if ! allowed "$from" "$to"; then
			echo "include-graph: $f includes \"$inc\" ($from -> $to)" >&2
			bad=1
		fi
	done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"][^>"]+[>"]).*/\1/p' "$f")
done < <(find src -name '*.[ch]' | sort)

for e in "${!edges[@]}"; do
	[[ ${e% -> *} == "${e#* -> }" ]] && continue
	printf '%s (%d)\n' "$e" "${edges[$e]}"
done | sort
exit $bad
