#!/usr/bin/env bash
# Prints the include graph of src/ between layers (util, core, net, store,
# main: src/*.c and src/*.h) and fails when an include breaks the one
# direction util <- core <- {net, store} <- main: net and store never
# include each other, core includes neither, util only itself, and core and
# util use no libwebsockets, libpq or jansson.
#
# Then the same inside src/core, between its modules: X.c and its internal
# header X_int.h are module X (a header-only X_int.h, such as
# instance_int.h, is a module of its own); a public header (chat.h, wire.h,
# ...) is a node of its own, named with its .h, as every module may
# implement part of one (chat.h above all). It prints each edge "core: A ->
# B" and fails when the modules' includes form a cycle (tsort(1)), or when
# a file outside src/core includes a core *_int.h header.
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

# The node of a file of src/core in the graph between its modules.
core_node() {
	local f=${1##*/}
	case $f in
	*_int.h) echo "${f%_int.h}" ;;
	*.c) echo "${f%.c}" ;;
	*) echo "$f" ;;
	esac
}

declare -A edges=() core_edges=()
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
		if [[ $to == core && $from != core && $inc == *_int.h ]]; then
			echo "include-graph: $f includes \"$inc\" (core's internals)" >&2
			bad=1
		fi
		if [[ $from == core && $to == core ]]; then
			a=$(core_node "$f")
			b=$(core_node "$inc")
			[[ $a != "$b" ]] && core_edges["$a $b"]=1
		fi
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

for e in "${!core_edges[@]}"; do
	echo "core: ${e% *} -> ${e#* }"
done | sort
# tsort prints the nodes of a loop on stderr and fails.
if ! loop=$(printf '%s\n' "${!core_edges[@]}" | tsort 2>&1 >/dev/null); then
	echo "include-graph: the modules of src/core include each other in a cycle:" >&2
	echo "$loop" >&2
	bad=1
fi
exit $bad
