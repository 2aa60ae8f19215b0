import { render } from "preact";
import { watchSource } from "./api/client";
import "./styles.css";
import { App, specFor } from "./ui/App";
import { openEarly } from "./ui/hooks";
import { parseRoute } from "./ui/route";

// The first page's stream opens before the first render, so its snapshot is on the way
// while the app renders its empty frame.
openEarly(watchSource, specFor(parseRoute(window.location.hash)));
const root = document.getElementById("app");
if (root) render(<App />, root);
