"""Channel adapters: translate an app's updates into `Inbound` and `Reply` back into its calls."""
