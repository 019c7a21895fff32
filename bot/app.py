from bot.http.server import create_app as create_app
