// A tiny Express API. `node index.js --check` starts it on a free port, calls it once, and exits:
// proof that the installed node_modules work.
const express = require('express');
const cors = require('cors');
const helmet = require('helmet');
const { z } = require('zod');

const app = express();
app.use(cors());
app.use(helmet());
app.get('/hello/:name', (req, res) => {
  const name = z.string().min(1).parse(req.params.name);
  res.json({ hello: name });
});

if (process.argv.includes('--check')) {
  const server = app.listen(0, '127.0.0.1', async () => {
    const { port } = server.address();
    const r = await fetch(`http://127.0.0.1:${port}/hello/hoard`);
    const body = await r.json();
    server.close();
    if (body.hello !== 'hoard') {
      console.error('unexpected answer', body);
      process.exit(1);
    }
    console.log(`express-api-example: OK (GET /hello/hoard -> ${JSON.stringify(body)})`);
  });
} else {
  const port = Number(process.env.PORT || 3000);
  app.listen(port, () => console.log(`listening on http://localhost:${port}`));
}
