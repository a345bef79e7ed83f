async function ticket() {
  const response = await fetch("/ticket", {
    method: "POST",
    body: JSON.stringify({ name: "ann" }),
  });
  return (await response.json()).ticket;
}

function connect(label, path, protocols) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${location.host}${path}`, protocols);
    ws.onopen = () => {
      resolve(`${label}: open, subprotocol "${ws.protocol}"`);
      ws.close();
    };
    ws.onclose = (event) => resolve(`${label}: closed, ${event.code}`);
  });
}

const echoed = "/protocol/main";
console.log(await connect("echoed", echoed, ["chat", `ticket.${await ticket()}`]));
const ignored = `/chat/main?ticket=${await ticket()}`;
console.log(await connect("not echoed", ignored, ["chat"]));
