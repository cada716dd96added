/* placeholder: the HTTP test server lands with the http module */
int main(void) { return 0; }
