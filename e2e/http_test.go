//go:build e2e && linux

package e2e

import (
	"fmt"
	"io"
	"net/http"
)

// httpGet fetches u with c and returns the body of a 200 answer; any other
// status is an error that quotes the body (InfluxDB and Prometheus say
// there what was wrong with a query).
func httpGet(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, nil
}
