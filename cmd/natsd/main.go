// Command natsd is a plain nats-server built from the nats-server module the
// worker embeds, with the same flags (-js, -sd, -p, -c, ...). It exists so
// the docker-compose setup can run NATS from a locally built image on
// machines with no container registry; anywhere else the official nats
// image does the same job.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	fs := flag.NewFlagSet("natsd", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: natsd [nats-server flags], e.g. natsd -js -sd /data -c /etc/nats.conf")
	}
	opts, err := server.ConfigureOptions(fs, os.Args[1:], server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsd: %v\n", err)
		os.Exit(2)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsd: %v\n", err)
		os.Exit(1)
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		fmt.Fprintf(os.Stderr, "natsd: %v\n", err)
		os.Exit(1)
	}
	s.WaitForShutdown()
}
