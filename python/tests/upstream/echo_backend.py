from strands_backend import PyStrandsClient

class Echo(PyStrandsClient):
    def on_connection_request(self, request):
        request.context.metadata = {"agent": request.headers.get("User-Agent", [""])[0]}
        return True
    def on_message(self, message, context):
        self.send_private_message(context.client_id, message)

client = Echo("localhost", 8081)
client.run_forever()
