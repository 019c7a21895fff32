"""The channel-agnostic core: message model, router, middlewares, i18n, context."""
