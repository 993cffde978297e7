package main

import (
	"github.com/spf13/cobra"

	"github.com/invoke-worker/worker/config"
	"github.com/invoke-worker/worker/doctor"
)

func newDoctorCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a configuration before it is deployed, and the live system it points at",
		Long: `Check a configuration (--config FILE, the environment and --set, as
worker run reads them) and explain the policy it makes: how long a job may
retry, how long a crashed worker's jobs wait, what goes through the claim
check. Then, unless --offline, check the live system: NATS with JetStream,
the streams, buckets and consumer as the server has them, the OCI
credentials and their key fingerprint, each configured endpoint's DNS and
TLS, and the local clock against a server's Date (OCI refuses signatures
more than 5 minutes off). Nothing is changed anywhere.

Every finding says what is wrong, why it matters and the fix. Exit 0 when
clean, 1 when something is wrong (an error or a warning), 2 for bad usage
or a configuration that cannot be read. Secrets are never printed.`,
	}
	offline := cmd.Flags().Bool("offline", false, "check the configuration only: no NATS, credentials, endpoints or clock")
	asJSON := cmd.Flags().Bool("json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		opts, err := loadOptions(g)
		if err != nil {
			return err
		}
		cfg, err := config.Read(opts)
		if err != nil {
			return err
		}
		report := doctor.Run(cmd.Context(), cfg, doctor.Options{Offline: *offline})
		if *asJSON {
			err = report.WriteJSON(cmd.OutOrStdout())
		} else {
			err = report.WriteText(cmd.OutOrStdout())
		}
		if err != nil {
			return err
		}
		if report.Failed() {
			return exitError{code: exitFailed}
		}
		return nil
	}
	return cmd
}
