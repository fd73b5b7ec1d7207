// Package testproc runs the programs under test as processes, for the
// tests of the command, of top and of the packages: the binary built once
// for a package's tests (Main), a started process whose stdout is read as
// line protocol and whose stderr is kept in a race-free buffer (Start),
// its credentials (ReadCreds), and the files it is given (WriteConfig,
// PluginConfig, PublicDir). Networks come from internal/testnet.
package testproc
