/**
 * The catalog of error codes. A code is never reused or renamed once released
 * (yarn's rule): docs/errors.md is generated from this table by `npm run docs`
 * and a test keeps the two in step.
 */
export interface CodeInfo {
  /** One line: what went wrong. */
  summary: string;
  /** What the user usually does about it. */
  fix: string;
  /** Process exit code when this error ends the run. */
  exit: ExitCode;
}

export const ExitCode = {
  Ok: 0,
  BuildFailed: 1,
  BadInput: 2,
  Environment: 3,
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const CODES = {
  E_USAGE: { summary: "The command line is not valid.", fix: "See `kiln --help` or `kiln COMMAND --help`.", exit: ExitCode.BadInput },
  E_PROJECT_NOT_FOUND: { summary: "No kiln.yml in the given directory or any parent.", fix: "Run kiln inside a project, or pass `-C DIR`.", exit: ExitCode.BadInput },
  E_CONFIG: { summary: "One or more configuration files have problems; each is listed with its own code.", fix: "Fix every listed problem; all of them are reported at once.", exit: ExitCode.BadInput },
  E_YAML_SYNTAX: { summary: "A YAML file does not parse.", fix: "Fix the syntax at the given line and column.", exit: ExitCode.BadInput },
  E_UNKNOWN_KEY: { summary: "A key that the schema does not know (often a typo).", fix: "Use the suggested key, or remove it. The JSON Schemas in schema/ list every key.", exit: ExitCode.BadInput },
  E_MISSING_FIELD: { summary: "A required field is absent.", fix: "Add the field named in the message.", exit: ExitCode.BadInput },
  E_WRONG_TYPE: { summary: "A value has the wrong type or an invalid form.", fix: "Write the value in the form the message says.", exit: ExitCode.BadInput },
  E_BAD_VALUE: { summary: "A value has the right type but is not allowed (an unknown kind, a bad path, a malformed checksum).", fix: "Use one of the values the message lists.", exit: ExitCode.BadInput },
  E_MISSING_DEP: { summary: "A package depends on a package that does not exist.", fix: "Create pkg/NAME/build.yml or fix the name (a suggestion is given when one is close).", exit: ExitCode.BadInput },
  E_CYCLE: { summary: "Packages depend on each other in a cycle.", fix: "Break the cycle printed in the message; every edge names the file and line that declares it.", exit: ExitCode.BadInput },
  E_UNKNOWN_TARGET: { summary: "A target named on the command line does not exist.", fix: "Run `kiln pkg list` to see the targets.", exit: ExitCode.BadInput },
  E_PATH_ESCAPE: { summary: "A path leaves the directory it must stay in (a source outside the project, an in-image path with `..`).", fix: "Keep sources inside the project and in-image paths absolute and without `..`.", exit: ExitCode.BadInput },
  E_SOURCE_MISSING: { summary: "A local file or directory named by a recipe does not exist.", fix: "Create it, fix the path, or mark the entry `optional: true`.", exit: ExitCode.BadInput },
  E_SOURCE_CHECKSUM: { summary: "A downloaded source does not have the sha256 the recipe declares.", fix: "Check the URL; if the new file is trusted, put its sha256 (printed) into the recipe.", exit: ExitCode.BuildFailed },
  E_SOURCE_FETCH: { summary: "A source could not be downloaded.", fix: "Check the URL and the network, or put the file into the download cache; with --offline nothing is downloaded.", exit: ExitCode.BuildFailed },
  E_SCRIPT_FAILED: { summary: "A package's build script exited non-zero.", fix: "Read the log tail printed with the error; the full log is at the path shown.", exit: ExitCode.BuildFailed },
  E_WRITE_OUTSIDE_DESTDIR: { summary: "A build script tried to write outside $DESTDIR and its scratch directory.", fix: "Install into \"$DESTDIR\" (e.g. `make install DESTDIR=\"$DESTDIR\"`).", exit: ExitCode.BuildFailed },
  E_DEP_FAILED: { summary: "A target was not built because a target it depends on failed.", fix: "Fix the failed dependency first.", exit: ExitCode.BuildFailed },
  E_BUILD_FAILED: { summary: "One or more targets failed; each is listed with its own code.", fix: "Fix the listed failures.", exit: ExitCode.BuildFailed },
  E_TOOL_MISSING: { summary: "A host tool that the work needs is not installed.", fix: "Run the apt-get command printed with the error (or `kiln doctor`).", exit: ExitCode.Environment },
  E_TOOL_FAILED: { summary: "A host tool exited non-zero.", fix: "The command line, its exit code and the tail of its output are printed; run it by hand to investigate.", exit: ExitCode.BuildFailed },
  E_STORE_CORRUPT: { summary: "The store holds a blob whose content does not match its digest, or a reference to a missing blob.", fix: "Run `kiln store fsck --repair`; the affected targets are rebuilt on the next build.", exit: ExitCode.Environment },
  E_STORE_IO: { summary: "The store could not be read or written.", fix: "Check the store path (--store, KILN_STORE), its permissions and free space.", exit: ExitCode.Environment },
  E_NOT_BUILT: { summary: "The target has no build record yet, so there is nothing to compare or show.", fix: "Run `kiln build` first.", exit: ExitCode.BadInput },
  E_INTERRUPTED: { summary: "The run was interrupted (Ctrl-C or SIGTERM); nothing partial was kept.", fix: "Run the command again; finished targets are reused.", exit: ExitCode.Interrupted },
  E_YQ_SYNTAX: { summary: "A yq modifier expression does not parse.", fix: "Fix the expression at the given line and column (yq v4 syntax).", exit: ExitCode.BadInput },
  E_YQ_UNSUPPORTED: { summary: "A yq modifier uses an operator or function kiln does not implement.", fix: "Rewrite the expression with the supported operators listed in docs/modifiers.md, or ask for the operator to be added.", exit: ExitCode.BadInput },
  E_YQ_EVAL: { summary: "A yq modifier failed while being applied (e.g. adding a string to a list, indexing a scalar).", fix: "Check the expression against the document it modifies; images/out/ holds each intermediate step.", exit: ExitCode.BadInput },
  E_IMAGE_NOT_FOUND: { summary: "An image named in an image spec is not in the store.", fix: "Use a FOO_TAG placeholder or @pkg:pkg/foo for packages of the project (kiln builds them first), or put the image into the store.", exit: ExitCode.BadInput },
  E_UNKNOWN_PLACEHOLDER: { summary: "A FOO_TAG placeholder or @pkg: reference names no package of the project.", fix: "Use one of the close matches printed, or create pkg/foo.", exit: ExitCode.BadInput },
  E_BAD_VARIANT: { summary: "A knob value (ZARCH, HV, PLATFORM, ROOTFS_FORMAT, FLAVOR) is unknown, or the combination is not allowed by kiln.yml.", fix: "Use the allowed values printed (see `kiln variants`).", exit: ExitCode.BadInput },
  E_COMPOSE: { summary: "An image spec cannot be composed (a kernel image without its kernel file, a user name not in /etc/passwd, a bad rlimit …).", fix: "Fix the spec entry or the package named in the message.", exit: ExitCode.BuildFailed },
  E_ROOTFS_TOO_BIG: { summary: "The root file system is larger than its budget (ROOTFS_MAXSIZE / images.maxsize).", fix: "Drop or shrink the largest contributors listed, or raise the budget.", exit: ExitCode.BuildFailed },
  E_LAYOUT: { summary: "A partition layout is invalid: overlapping or unknown partitions, unknown types, a size that does not fit.", fix: "Fix the layout in kiln.yml (disks.live / disks.installer) as the message says.", exit: ExitCode.BadInput },
  E_DEBIAN_UNLOCKED: { summary: "A debian package has no entry in kiln.lock for this architecture, or its entry was made for another package list or suite.", fix: "Run `kiln lock` (it adds what is missing and keeps existing pins); `kiln lock --update` after a suite change.", exit: ExitCode.BadInput },
  E_DEBIAN_RESOLVE: { summary: "The Debian packages asked for cannot be installed together: a dependency no version satisfies, a package not in the suite, or a Conflicts/Breaks in the chosen set. The message shows the chain from the request.", fix: "Change the package list or its version constraint, add an `exclude`, or use another suite.", exit: ExitCode.BadInput },
  E_DEBIAN_INDEX: { summary: "The Debian archive index could not be fetched or trusted: no such suite or architecture, a bad InRelease signature, a Packages file whose sha256 differs from Release, or an index not cached with --offline.", fix: "Check debian.mirror, debian.suite and debian.keyring in kiln.yml and the network; see docs/debian.md for what is verified.", exit: ExitCode.BuildFailed },
  E_DEBIAN_GONE: { summary: "A .deb pinned in kiln.lock is no longer on the mirror (a newer version replaced it).", fix: "Run `kiln lock --update` to pin what the mirror has now, or point debian.mirror at a snapshot (snapshot.debian.org) that still has it.", exit: ExitCode.BuildFailed },
  E_DEBIAN_CHECKSUM: { summary: "A downloaded .deb does not have the sha256 or size pinned in kiln.lock.", fix: "Do not edit kiln.lock by hand; check the mirror, then run `kiln lock --update` if the new file is trusted.", exit: ExitCode.BuildFailed },
  E_DEBIAN_DEB: { summary: "A .deb could not be read (not an ar archive, no data.tar member, a compression kiln cannot read).", fix: "Check the file named in the message; `kiln store gc` and a rebuild fetch it again.", exit: ExitCode.BuildFailed },
  E_DEBIAN_CONFLICT: { summary: "Two packages of a debian recipe write the same path (a file, symlink or device; shared directories and identical symlinks are fine), or a file where another package has a directory. dpkg refuses this unless one package declares Replaces on the other; the message lists each path with both packages.", fix: "Add the paths (globs) to the recipe's `overwrite:` list to let the later package in kiln.lock's order win, or `exclude` one of the packages.", exit: ExitCode.BuildFailed },
  E_DEBIAN_PATH: { summary: "A .deb has an entry that would be written outside the image root: a name with `..`, or a path below a symlink that is absolute or climbs out of the root (planted by an earlier entry or package). The message names the package and the entry.", fix: "The package is broken or malicious: exclude it or pin another version; do not unpack it with other tools.", exit: ExitCode.BuildFailed },
  E_DEBIAN_SCRIPT: { summary: "What kiln does in place of a maintainer script (`usrmerge`, `busyboxLinks`, `accounts`, `ldconfig`) cannot be done on this package set, e.g. `busyboxLinks` without a busybox, or a busybox whose applet table kiln cannot find.", fix: "Add the package the step needs to `packages`, or turn the option off and add the files with a `files` or `script` package.", exit: ExitCode.BuildFailed },
  E_LOCK_INVALID: { summary: "kiln.lock cannot be read: not valid JSON, or not the shape kiln writes (often a merge conflict).", fix: "Restore kiln.lock from version control, or delete it and run `kiln lock`.", exit: ExitCode.BadInput },
  E_BOOT_TIMEOUT: { summary: "`kiln run --expect` did not see the expected output on the serial console in time.", fix: "Read the last console lines printed (the whole console is in the log file named); raise --timeout for slow (TCG) boots.", exit: ExitCode.BuildFailed },
  E_BOOT_EXITED: { summary: "The virtual machine stopped before the expected output appeared.", fix: "Read the console lines printed; the whole console is in the log file named.", exit: ExitCode.BuildFailed },
  E_REGISTRY: { summary: "A registry could not be reached or answered with an error, also after retries (5xx, 429, dropped connections are retried with backoff).", fix: "Check the registry URL and that it is up; KILN_REGISTRY_RETRIES sets the number of retries. Run with -v to see every request (never the credentials).", exit: ExitCode.Environment },
  E_REGISTRY_AUTH: { summary: "A registry refused the credentials, or needs credentials and none were found.", fix: "Log in (`docker login`, which writes ~/.docker/config.json) or set KILN_REGISTRY_USER and KILN_REGISTRY_PASSWORD; see docs/registry.md.", exit: ExitCode.Environment },
  E_REGISTRY_NOT_FOUND: { summary: "An image (or a blob of it) is not in the registry, or not for the architecture asked for.", fix: "Check the reference and digest; push the image first.", exit: ExitCode.BuildFailed },
  E_BLOB_DIGEST: { summary: "A blob or manifest pulled from a registry does not have the digest it was asked for; nothing was stored.", fix: "The registry's copy is corrupt or was tampered with: repair or re-push it there.", exit: ExitCode.BuildFailed },
  E_OFFLINE: { summary: "With --offline, an image that must be pulled is not in the store.", fix: "Run once without --offline (or `kiln pull` the image) to fill the store.", exit: ExitCode.BadInput },
  E_DIFF_INPUT: { summary: "An input of `kiln diff` is missing, is not an image kiln can read (tar, squashfs, ext4, FAT, raw GPT or qcow2 disk), or the two cannot be compared (a disk with a file system).", fix: "Pass two images of comparable kinds; erofs is not supported.", exit: ExitCode.BadInput },
  E_PYGOS_PRODUCT: { summary: "`--product` (or KILN_PRODUCT) names no product of the Pygos tree: there is no product/NAME.layers.", fix: "Use one of the products listed in the hint (the close match is suggested).", exit: ExitCode.BadInput },
  E_PYGOS_LAYER: { summary: "A product's .layers file names a layer that has no folder under layer/.", fix: "Create layer/NAME/ or remove the line shown.", exit: ExitCode.BadInput },
  E_PYGOS_SCRIPT: { summary: "A Pygos build script (or a TOOLCHAIN/INIT layer file) cannot be sourced: a shell syntax error, or it exits while being read.", fix: "Check the file with `bash -n FILE`; the shell's message is printed.", exit: ExitCode.BadInput },
  E_PYGOS_TOOLCHAIN: { summary: "A product's TOOLCHAIN cannot be used: an unknown TC_KIND, no TARGET for a cross toolchain, a TARGET of an architecture kiln does not build, or TC_KIND=source without toolchain packages.", fix: "Set TC_KIND (host, debian or source) and TARGET in a layer's TOOLCHAIN; see docs/pygos.md.", exit: ExitCode.BadInput },
  E_PYGOS_FUNCTION: { summary: "A Pygos build script does not define a function kiln must call (prepare, build or deploy).", fix: "Define the function in the script (an empty one, `prepare() { :; }`, is fine).", exit: ExitCode.BuildFailed },
  E_PYGOS_STEP: { summary: "A step of a Pygos package (prepare, build or deploy) exited non-zero.", fix: "Read the log tail printed with the error; the step's whole log is at the path shown (BUILDROOT/log/PACKAGE-STEP.log.gz).", exit: ExitCode.BuildFailed },
  E_PYGOS_PACKAGE: { summary: "A sub package cannot be packaged: its .files listing is missing, names a path the deploy step did not install, or has a malformed line.", fix: "Make `deploy` write PKGDEPLOYDIR/NAME.files (PATH [MODE [UID [GID]]] per line) and NAME.desc for every SUBPKG entry.", exit: ExitCode.BuildFailed },
  E_PYGOS_ROOTFS: { summary: "A product's ROOTFS names a binary package no build script provides, or a package's .desc requires one.", fix: "Fix the name at the file and line shown, or add the package (a SUBPKG entry of some pkg/NAME/build).", exit: ExitCode.BadInput },
  E_NOT_REPRODUCIBLE: { summary: "`kiln verify-reproducible` built the same inputs twice and got different outputs (or package images); the message lists them and kiln diff shows the first difference.", fix: "Find what the differing package or step writes that depends on the build (the time, a random value, the host name, the order of a directory listing) and fix it, e.g. use $SOURCE_DATE_EPOCH; --keep keeps both trees to compare.", exit: ExitCode.BuildFailed },
  E_INTERNAL: { summary: "A bug in kiln.", fix: "Please report it with the output of `kiln -v`.", exit: ExitCode.BuildFailed },
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;
