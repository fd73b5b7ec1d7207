// Package e2e holds the end-to-end test: real Telegraf (stock, running
// bin/xdp_udp_ports through inputs.execd, and bin/telegraf-xdp with the
// plugin built in) writing to a real influxd and serving a real
// Prometheus, with known traffic, and the README's InfluxQL (with curl
// and the influx CLI) and PromQL run as printed against it. The tests
// carry the build tag "e2e" so that a plain `go test ./...` does not run
// them; `make e2e` (run by `make test`) builds the binaries and runs them.
package e2e
