for (const path of ["/chat/Main", "/nowhere", "/deny/Main", "/close/Main"]) {
  const closed = await new Promise((resolve) => {
    new WebSocket(`ws://${location.host}${path}`).onclose = resolve;
  });
  console.log(path, closed.code, closed.reason);
}
