spawn-fcgi -n -a {{fcgi_host}} -p {{fcgi_port}} -u {{user}} -- {{app}}
