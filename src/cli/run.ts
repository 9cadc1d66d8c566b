/** Entry point that runs the CLI with this process's arguments (tests spawn it through tsx). */
import { main } from './main.js';

await main(process.argv);
