// Package packaging holds what `make install` and `make package` install
// (the nfpm configuration, the post-install script, the execd snippet, the
// man page, copyright) and the test of the packages. The test carries the
// build tag "package" so that a plain `go test ./...` does not run it:
// `make package-test` (run by `make test`) builds the packages, then
// installs the .deb on this machine, runs the installed binary as an
// unprivileged user, purges the package and checks what is left.
package packaging
