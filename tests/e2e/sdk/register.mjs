// SPDX-License-Identifier: Apache-2.0
// node --import ./register.mjs: install loader.mjs before anything is imported.
import { register } from 'node:module';
register('./loader.mjs', import.meta.url);
