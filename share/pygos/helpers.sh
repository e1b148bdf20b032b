# kiln: the helper functions Pygos build scripts may call (docs/pygos.md).
# Sourced by every step kiln runs for a Pygos package (metadata, prepare,
# build, deploy, check_update). Written for kiln; layer lookups go through
# KILN_LAYERDIRS, the product's layer folders one per line in layer order.

# ---- configuration layers --------------------------------------------------

# Print the absolute path of the last layer's copy of a file; fail if none has it.
file_path_override() {
	local __d __found=""
	while IFS= read -r __d; do
		[ -n "$__d" ] && [ -e "$__d/$1" ] && __found="$__d/$1"
	done <<< "${KILN_LAYERDIRS:-}"
	[ -n "$__found" ] || return 1
	echo "$__found"
}

# Print the last layer's copy of a file (nothing if no layer has it).
cat_file_override() {
	local __p
	__p="$(file_path_override "$1")" || return 0
	cat "$__p"
}

# Print every layer's copy of a file, in layer order.
cat_file_merge() {
	local __d
	while IFS= read -r __d; do
		if [ -n "$__d" ] && [ -f "$__d/$1" ]; then cat "$__d/$1"; fi
	done <<< "${KILN_LAYERDIRS:-}"
	return 0
}

# Source the last layer's copy of a file.
include_override() {
	local __p
	__p="$(file_path_override "$1")" || return 0
	source "$__p"
}

# Source every layer's copy of a file, in layer order.
include_merge() {
	local __d
	while IFS= read -r __d; do
		if [ -n "$__d" ] && [ -f "$__d/$1" ]; then source "$__d/$1"; fi
	done <<< "${KILN_LAYERDIRS:-}"
	return 0
}

# ---- building ----------------------------------------------------------------

# Apply the package's patches (DIR/*.patch, default the package folder) to the
# current directory, in name order.
apply_patches() {
	local __dir="${1:-$KILN_PKGDIR}" __p
	for __p in "$__dir"/*.patch; do
		[ -f "$__p" ] || continue
		echo "kiln: applying $(basename "$__p")"
		patch -p1 --no-backup-if-mismatch -i "$__p"
	done
}

# Strip ELF files (directories recursively) with the target's strip.
strip_files() {
	local __strip="${TARGET:+$TARGET-}strip" __f __magic
	command -v "$__strip" > /dev/null 2>&1 || __strip=strip
	command -v "$__strip" > /dev/null 2>&1 || return 0
	for __f in "$@"; do
		if [ -L "$__f" ]; then
			continue
		elif [ -d "$__f" ]; then
			local __sub
			for __sub in "$__f"/* "$__f"/.[!.]*; do
				[ -e "$__sub" ] || [ -L "$__sub" ] || continue
				strip_files "$__sub"
			done
		elif [ -f "$__f" ]; then
			__magic="$(head -c 4 "$__f" 2> /dev/null | od -An -c | tr -d ' \n')"
			if [ "$__magic" = "177ELF" ]; then
				"$__strip" --strip-unneeded "$__f" 2> /dev/null || true
			fi
		fi
	done
	return 0
}

# libtool archives name /lib (the target's), which a relink would take from the
# host: point them at the staging sysroot instead. Arguments: folders or .la
# files (default: the current folder).
unfuck_libtool() {
	local __la
	find "${@:-.}" -name '*.la' -type f 2> /dev/null | while IFS= read -r __la; do
		sed -i -e "s#\\([ '=]\\)-L/lib\\b#\\1-L$KILN_SYSROOT/lib#g" \
			-e "s#\\([ ']\\)/lib/\\([^ ']*\\.la\\)#\\1$KILN_SYSROOT/lib/\\2#g" \
			-e "s#^libdir='/lib'#libdir='$KILN_SYSROOT/lib'#" "$__la"
	done
	return 0
}

# Read version numbers (up to four dot-separated parts of digits or letters)
# from stdin and print the greatest.
verson_find_greatest() {
	grep -E '^[0-9A-Za-z]+(\.[0-9A-Za-z]+){0,3}$' | sort -V | tail -n 1
}

# Run an autoconf configure script of source folder $1 for the target, with the
# layout kiln's Pygos packages use (prefix "", /bin, /lib); extra options follow.
run_configure() {
	local __src="$1"
	shift
	"$__src/configure" --build="$HOSTTUPLE" --host="$TARGET" \
		--prefix="" --exec-prefix="" --bindir=/bin --sbindir=/bin \
		--libdir=/lib --libexecdir=/lib/libexec --includedir=/include \
		--datarootdir=/share --sysconfdir=/etc --localstatedir=/var \
		--runstatedir=/run "$@"
}

# ---- check_update ----------------------------------------------------------

# Fetch a URL to stdout (what check_update functions pipe into grep/sed).
fetch_url() {
	curl --silent --show-error --location --fail "$1"
}
