# A root with a real git (sourced by tests/e2e/test_sandbox*.sh).

# mk_git_root DIR: the test root plus Debian's git, the libraries ldd names
# and git-upload-pack (a clone over file:// runs it), with a bare repository
# at /srv/repo.git: README "on main" on branch main (its HEAD), and one more
# commit, README "on feature", on branch feature.
mk_git_root() {
	local root=$1 work f
	if ! command -v git >/dev/null; then
		fail "git is needed for the image with git (scripts/install-deps.sh installs it)"
		return 1
	fi
	work=$(mktemp -d)
	cp -a "$ROOTFS" "$root"
	for f in /usr/bin/git $(ldd /usr/bin/git | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
	mkdir -p "$root/usr/lib/git-core" "$root/usr/share/git-core/templates"
	cp /usr/bin/git "$root/usr/lib/git-core/git-upload-pack"
	gitw() { git -c user.name=berth -c user.email=berth@example.com -C "$work" "$@"; }
	git init -q -b main "$work"
	echo "on main" >"$work/README"
	gitw add README && gitw commit -qm first
	gitw checkout -qb feature
	echo "on feature" >"$work/README"
	gitw commit -qam second
	gitw checkout -q main
	git clone -q --bare "$work" "$root/srv/repo.git"
	rm -rf "$work"
}
