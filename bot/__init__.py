"""memberbot: a member assistant for WeChat Official Accounts and Telegram."""
