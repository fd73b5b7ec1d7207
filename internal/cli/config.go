package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

const table = "inputs.xdp_udp_ports"

// LoadConfig reads the plugin's config file strictly. Telegraf's shim
// would silently ignore unknown options, other plugins and a second
// [[inputs.xdp_udp_ports]] table; here each is an error that names it.
// $VAR and ${VAR} are replaced from the environment, as the shim does.
func LoadConfig(path string) (*plugin.XDPUDPPorts, error) {
	p := plugin.New()
	if path == "" {
		return nil, errors.New("no config file: pass -config FILE with an [[inputs.xdp_udp_ports]] table (see sample.conf)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var conf struct {
		Inputs map[string][]toml.Primitive `toml:"inputs"`
	}
	md, err := toml.Decode(expandEnv(string(data)), &conf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name := range conf.Inputs {
		if name != "xdp_udp_ports" {
			return nil, fmt.Errorf("%s: [[inputs.%s]]: this binary runs only [[%s]]", path, name, table)
		}
	}
	tables := conf.Inputs["xdp_udp_ports"]
	switch len(tables) {
	case 0:
		return nil, fmt.Errorf("%s: no [[%s]] table", path, table)
	case 1:
	default:
		return nil, fmt.Errorf("%s: %d [[%s]] tables; one process runs one, start one binary per table", path, len(tables), table)
	}
	if err := md.PrimitiveDecode(tables[0], p); err != nil {
		return nil, fmt.Errorf("%s: [[%s]]: %w", path, table, err)
	}
	var unknown []string
	for _, key := range md.Undecoded() {
		unknown = append(unknown, strings.TrimPrefix(key.String(), table+"."))
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("%s: unknown option(s) %s", path, strings.Join(unknown, ", "))
	}
	return p, nil
}

var envEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`)

func expandEnv(s string) string {
	return os.Expand(s, func(key string) string { return envEscaper.Replace(os.Getenv(key)) })
}
