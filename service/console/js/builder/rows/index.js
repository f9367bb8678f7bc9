// Every row kind of the builder, in the order the "+ …" buttons offer them. A new kind of
// condition is one module beside these and one line here (see docs/console.md).

import './attribute.js';
import './event.js';
import './sequence.js';
import './group.js';
import './segment.js';
import './bucket.js';
import './sql.js';
import './not.js';
import './json.js';
