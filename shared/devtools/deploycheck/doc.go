// Package deploycheck holds only tests: they check the files in
// deployments/ without a Docker engine (these machines have none), as far
// as a YAML reading can: the compose file parses, every service it starts
// is wired to the others, and the environment it gives the services names
// variables the services read.
package deploycheck
