//go:build package

package packaging

import (
	"os"
	"strings"
	"testing"
)

// TestRPM checks the .rpm with Debian's rpm: its files and scripts
// (`rpm -qlp --scripts`) are exactly the layout and the post-install
// script the .deb has, the config is %config(noreplace), it requires
// libcap (setcap) and has the .deb's version.
func TestRPM(t *testing.T) {
	requireTools(t, "rpm", "dpkg-deb", "sh")
	rpm := pkgFile(t, "*.rpm")
	script, err := os.ReadFile("postinst")
	if err != nil {
		t.Fatal(err)
	}
	// The two directories of our own are owned by the package, so rpm -e
	// removes them.
	files := append([]string{confDir, confFile, binFile, docDir}, pkgFiles[2:]...)
	want := "postinstall scriptlet (using /bin/sh):\n" + string(script) + "\n" + strings.Join(files, "\n") + "\n"
	if got := run(t, "rpm", "-qlp", "--scripts", rpm); got != want {
		t.Errorf("rpm -qlp --scripts %s:\n%s\nwant:\n%s", rpm, got, want)
	}
	run(t, "sh", "-n", "postinst")

	attrs := run(t, "rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]", rpm)
	for _, line := range []string{
		"cn -rw-r--r-- root:root " + confFile,
		" -rwxr-xr-x root:root " + binFile,
	} {
		if !strings.Contains(attrs, line+"\n") {
			t.Errorf("rpm file attributes have no %q:\n%s", line, attrs)
		}
	}
	if req := strings.Fields(run(t, "rpm", "-qp", "--requires", rpm)); len(req) != 1 || req[0] != "libcap" {
		t.Errorf("rpm requires %q, want libcap (setcap)", req)
	}
	debVersion := strings.TrimSpace(run(t, "dpkg-deb", "-f", pkgFile(t, "*.deb"), "Version"))
	if v := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE}", rpm); v != pkgName+" "+debVersion+"-1" {
		t.Errorf("rpm is %q, want %s %s-1 (the .deb's version)", v, pkgName, debVersion)
	}
}
