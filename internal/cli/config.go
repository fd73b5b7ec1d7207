package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	plugin "github.com/xdp-udp-ports/xdp_udp_ports/plugins/inputs/xdp_udp_ports"
)

const table = "inputs.xdp_udp_ports"

// telegrafTables are the top-level tables of a telegraf.conf.
var telegrafTables = []string{"agent", "global_tags", "outputs", "processors", "aggregators", "secretstores"}

// telegrafOptions are the options Telegraf itself takes from every input's
// table (its models.InputConfig and filters), not the plugin: in the
// execd variant they belong on the [[inputs.execd]] table.
var telegrafOptions = []string{
	"alias", "collection_jitter", "collection_offset", "data_format", "drop", "fielddrop", "fieldexclude",
	"fieldinclude", "fieldpass", "interval", "log_level", "metricpass", "name_override", "name_prefix",
	"name_suffix", "namedrop", "namedrop_separator", "namepass", "namepass_separator", "pass", "precision",
	"startup_error_behavior", "tagdrop", "tagexclude", "taginclude", "tagpass", "tags", "time_source",
}

// LoadConfig reads the plugin's config file strictly. Telegraf's shim
// would silently ignore unknown options, other plugins and a second
// [[inputs.xdp_udp_ports]] table; here each is an error that names it,
// with a hint for the usual mistakes: a whole telegraf.conf, a single
// [inputs.xdp_udp_ports] table, Telegraf's own per-plugin options.
// $VAR and ${VAR} are replaced from the environment, as the shim does.
func LoadConfig(path string) (*plugin.XDPUDPPorts, error) {
	if path == "" {
		return nil, errors.New("no config file: pass -config FILE with an [[inputs.xdp_udp_ports]] table (see sample.conf)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]toml.Primitive
	md, err := toml.Decode(expandEnv(string(data)), &doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := notTelegrafConf(md, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var inputs map[string]toml.Primitive
	if err := md.PrimitiveDecode(doc["inputs"], &inputs); err != nil {
		return nil, fmt.Errorf("%s: inputs: %w", path, err)
	}
	if md.Type("inputs", "xdp_udp_ports") == "Hash" {
		return nil, fmt.Errorf("%s: [%s] is a single table; Telegraf's plugin tables are arrays of tables: write [[%s]], with double brackets", path, table, table)
	}
	var tables []toml.Primitive
	if err := md.PrimitiveDecode(inputs["xdp_udp_ports"], &tables); err != nil {
		return nil, fmt.Errorf("%s: [[%s]]: %w", path, table, err)
	}
	switch len(tables) {
	case 0:
		return nil, fmt.Errorf("%s: no [[%s]] table", path, table)
	case 1:
	default:
		return nil, fmt.Errorf("%s: %d [[%s]] tables; one process runs one, start one binary per table", path, len(tables), table)
	}
	p := plugin.New()
	if err := md.PrimitiveDecode(tables[0], p); err != nil {
		return nil, fmt.Errorf("%s: [[%s]]: %w", path, table, err)
	}
	if err := undecoded(md); err != nil {
		return nil, fmt.Errorf("%s: [[%s]]: %w", path, table, err)
	}
	return p, nil
}

// notTelegrafConf refuses what belongs in telegraf.conf: its tables,
// other plugins, and options outside any table.
func notTelegrafConf(md toml.MetaData, doc map[string]toml.Primitive) error {
	var telegraf, loose []string
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		switch {
		case key == "inputs":
			var inputs map[string]toml.Primitive
			if md.PrimitiveDecode(doc[key], &inputs) == nil {
				for _, name := range slices.Sorted(maps.Keys(inputs)) {
					if name != "xdp_udp_ports" {
						telegraf = append(telegraf, "[[inputs."+name+"]]")
					}
				}
			}
		case slices.Contains(telegrafTables, key):
			var plugins map[string]toml.Primitive
			if key != "agent" && key != "global_tags" && md.PrimitiveDecode(doc[key], &plugins) == nil {
				for _, name := range slices.Sorted(maps.Keys(plugins)) {
					telegraf = append(telegraf, "[["+key+"."+name+"]]")
				}
			} else {
				telegraf = append(telegraf, "["+key+"]")
			}
		default:
			loose = append(loose, key)
		}
	}
	if len(telegraf) > 0 {
		return fmt.Errorf("%s: this looks like a telegraf.conf; -config takes the plugin's own file, "+
			"with only the [[%s]] table (see sample.conf), and telegraf.conf runs this binary from "+
			"[[inputs.execd]] with -config naming that file", strings.Join(telegraf, ", "), table)
	}
	if len(loose) > 0 {
		return fmt.Errorf("%s outside any table: the plugin's options go under [[%s]]", strings.Join(loose, ", "), table)
	}
	return nil
}

// undecoded reports the options of the plugin's table that it does not
// have: Telegraf's per-plugin options, with where they go, and unknown ones.
func undecoded(md toml.MetaData) error {
	var telegraf, unknown []string
	for _, key := range md.Undecoded() {
		if len(key) < 3 {
			continue
		}
		switch name := key[2]; {
		case slices.Contains(telegraf, name) || slices.Contains(unknown, name):
		case slices.Contains(telegrafOptions, name):
			telegraf = append(telegraf, name)
		default:
			unknown = append(unknown, name)
		}
	}
	var errs []string
	if len(unknown) > 0 {
		slices.Sort(unknown)
		errs = append(errs, "unknown option(s) "+strings.Join(unknown, ", "))
	}
	if len(telegraf) > 0 {
		slices.Sort(telegraf)
		msg := strings.Join(telegraf, ", ") + ": Telegraf's own per-plugin option(s), which it applies to what a plugin " +
			"reports; this file does not take them: set them on the [[inputs.execd]] table that runs this binary"
		if slices.Contains(telegraf, "interval") {
			msg += ` (the binary gathers every -poll_interval, or at the execd table's interval with signal = "STDIN" and -poll_interval_disabled)`
		}
		errs = append(errs, msg)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

var envEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`)

func expandEnv(s string) string {
	return os.Expand(s, func(key string) string { return envEscaper.Replace(os.Getenv(key)) })
}
