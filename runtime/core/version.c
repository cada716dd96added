/* placeholder so the bbitcore library has a member until the first core C file lands */
int bbit_core_placeholder;
