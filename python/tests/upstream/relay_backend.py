from strands_backend import PyStrands
app = PyStrands(port=8081)

@app.on_connection_request
async def admit(request):
    request.context.room_id = request.url.rsplit("/", 1)[-1] or "lobby"
    return True

@app.on_message
async def relay(message, context):
    await app.send_room_message(context.room_id, f"{context.client_id}: {message}")

app.run()
